"""Soft histograms of samples sharded across processes (``torch.distributed``).

Each process computes the histogram of its own samples; a sum all-reduce gives
every process the histogram of all of them, and :func:`all_reduce_histogram`
makes that sum differentiable with the gradients a single process holding all
the samples would get.
"""

# Unevaluated annotations: torch builds without distributed lack dist.ProcessGroup.
from __future__ import annotations

from typing import Optional

import torch
import torch.distributed as dist
from torch import Tensor


__all__ = ["all_reduce_histogram"]


class _SumAcrossRanks(torch.autograd.Function):
    """The sum over ranks, whose backward passes the gradient through
    (_PassToRanks): every rank holds the gradient of the same loss with
    respect to the same global histogram, which is also the gradient with
    respect to its own term of the sum."""

    @staticmethod
    def forward(ctx, hist: Tensor, group: Optional[dist.ProcessGroup]) -> Tensor:
        ctx.group = group
        total = hist.clone()  # all_reduce works in place; leave the caller's tensor alone
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _PassToRanks.apply(grad, ctx.group), None


class _PassToRanks(torch.autograd.Function):
    """_SumAcrossRanks' backward, the identity on each rank's copy of the
    global gradient; its own backward (double backward) sums over ranks,
    since that gradient is one value shared by all of them: each rank's
    second-order term reaches every rank's samples."""

    @staticmethod
    def forward(ctx, grad: Tensor, group: Optional[dist.ProcessGroup]) -> Tensor:
        ctx.group = group
        return grad.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _SumAcrossRanks.apply(grad, ctx.group), None


def all_reduce_histogram(hist: Tensor, group: Optional[dist.ProcessGroup] = None) -> Tensor:
    """The global histogram: the sum of every rank's ``hist``, differentiable.

    Call it on every rank of ``group`` (default: the whole world) with the
    histogram of that rank's samples, computed with the same ``bins``, ``min``,
    ``max``, ``kappa`` and ``kernel`` everywhere. Pass ``min`` and ``max``
    explicitly: with ``min == max`` each rank would take the range of its own
    samples (all-reduce their MIN and MAX first if the range must come from
    the data).

    Gradients assume what the forward suggests: **every rank computes the same
    loss from the returned global histogram**. Then the backward passes the
    gradient through unchanged, and each rank's gradient with respect to its
    samples (and weights) equals the gradient a single process with all the
    samples computes for them. ``torch.distributed.nn.functional.all_reduce``
    instead sums the gradients over ranks in its backward (right when the
    total loss is the sum of per-rank losses), which here would multiply them
    by the world size.

    Second-order gradients (``create_graph=True``, e.g. a gradient penalty
    that every rank computes from globally reduced quantities) are the single
    process's too: the double backward sums over the ranks.

    A parameter shared by all ranks (a model weight) receives on each rank the
    part of its gradient that flows through that rank's samples: the
    single-process gradient is the *sum* over ranks. DistributedDataParallel
    *averages* gradients, so under it multiply the loss by the world size (or
    all-reduce the parameters' gradients with SUM yourself).

    Args:
        hist: this rank's histogram, any shape and floating dtype; on a device
            the process group's backend supports (CPU for gloo, CUDA for nccl).
        group: the process group to reduce over; ``None`` for the default group.

    Returns:
        A new tensor with ``hist``'s shape: the elementwise sum over the ranks.
    """
    if not isinstance(hist, Tensor):
        raise TypeError(f"softhist: all_reduce_histogram's hist must be a tensor, got {type(hist).__name__}")
    if not hist.is_floating_point():
        raise ValueError(f"softhist: all_reduce_histogram's hist must be a floating-point histogram, "
                         f"got dtype {hist.dtype}")
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "softhist: all_reduce_histogram needs an initialised process group; call "
            "torch.distributed.init_process_group first (a single process needs no "
            "all-reduce: use the histogram itself)"
        )
    return _SumAcrossRanks.apply(hist, group)
