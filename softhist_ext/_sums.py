"""Sums whose bits do not depend on the thread count (the CPU's promise).

torch sums more than 32768 terms into one number in per-thread parts (its
two-pass reduction), so those bits follow the thread count; a sum with
several outputs is split among threads by output, each summed whole by one
thread. So a long sum into one number is taken in blocks first."""

import torch
from torch import Tensor


def total(t: Tensor, axes: int) -> Tensor:
    """t summed over its last `axes` dimensions (shape t.shape[:-axes]),
    the same bits for any thread count."""
    grain, block = 32768, 4096  # at::internal::GRAIN_SIZE; (TorchScript reads no globals)
    lead = list(t.shape[:t.dim() - axes])
    flat = t.flatten(t.dim() - axes) if axes > 0 else t.unsqueeze(-1)
    # (the shape test first: under symbolic shapes the size test would guard
    # on a batch dimension for a loop that never runs on batches)
    while flat.numel() == flat.shape[-1] and flat.numel() > grain:
        pad = (-flat.shape[-1]) % block
        flat = torch.nn.functional.pad(flat.reshape(-1), [0, pad]).reshape(-1, block).sum(-1)
    return flat.sum(-1).reshape(lead)


def dot(a: Tensor, b: Tensor) -> Tensor:
    """The float64 inner product of a and b (any shapes of the same numel),
    the same bits for any thread count (torch.dot's BLAS splits it)."""
    return total(a.to(torch.float64).reshape(-1) * b.to(torch.float64).reshape(-1), 1)


class _Divided(torch.autograd.Function):
    """h / d, d broadcast over h's last `axes` dimensions (d.shape = lead +
    [1] * axes), whose gradient with respect to d sums over them by total:
    autograd's own sum of a broadcast is torch's thread-dependent one."""

    @staticmethod
    def forward(ctx, h: Tensor, d: Tensor, axes: int) -> Tensor:
        out = h / d
        ctx.save_for_backward(h, d)
        ctx.axes = axes
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        h, d = ctx.saved_tensors
        gd = -total(g * h, ctx.axes).reshape(d.shape) / (d * d)
        return g / d, gd, None


def divided(h: Tensor, d: Tensor, axes: int) -> Tensor:
    """h / d (d: h's shape but 1 over its last `axes` dimensions), the same
    bits for any thread count, gradients included (eager mode)."""
    if not torch.jit.is_scripting():
        if d.requires_grad and not torch.jit.is_tracing():  # (a trace saves no Python Function)
            return _Divided.apply(h, d, axes)
    return h / d
