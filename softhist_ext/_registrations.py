"""Fake kernels and autograd for ``torch.ops.softhist``, registered from Python
because the stable ABI the kernels are built on has no autograd.

Every op's derivative is another op one derivative order up (see
``csrc/kernels.h``): d scatter_m = gather_{m+1} (x) and gather_m (weight);
d gather_m = gather_{m+1} (x) and scatter_m (hist).
"""

import torch

ops = torch.ops.softhist


@torch.library.register_fake("softhist::params")
def _params_fake(input, bins, min, max, kappa, kernel):
    return input.new_empty((3,), dtype=torch.float64)


@torch.library.register_fake("softhist::scatter")
def _scatter_fake(input, weight, params, bins, order, kernel):
    return input.new_empty(tuple(input.shape[:-1]) + (bins,))


@torch.library.register_fake("softhist::gather")
def _gather_fake(input, hist, params, order, kernel):
    return torch.empty_like(input, memory_format=torch.contiguous_format)


def _params_setup(ctx, inputs, output):
    ctx.mark_non_differentiable(output)


def _params_backward(ctx, grad):
    return None, None, None, None, None, None


def _scatter_setup(ctx, inputs, output):
    input, weight, params, bins, order, kernel = inputs
    ctx.save_for_backward(input, weight, params)
    ctx.order, ctx.kernel = order, kernel


def _scatter_backward(ctx, grad):
    input, weight, params = ctx.saved_tensors
    grad_input = grad_weight = None
    if ctx.needs_input_grad[0]:
        grad_input = ops.gather(input, grad, params, ctx.order + 1, ctx.kernel)
        if weight is not None:
            grad_input = grad_input * weight
    if ctx.needs_input_grad[1]:
        grad_weight = ops.gather(input, grad, params, ctx.order, ctx.kernel)
    return grad_input, grad_weight, None, None, None, None


def _gather_setup(ctx, inputs, output):
    input, hist, params, order, kernel = inputs
    ctx.save_for_backward(input, hist, params)
    ctx.order, ctx.kernel = order, kernel


def _gather_backward(ctx, grad):
    input, hist, params = ctx.saved_tensors
    grad_input = grad_hist = None
    if ctx.needs_input_grad[0]:
        grad_input = grad * ops.gather(input, hist, params, ctx.order + 1, ctx.kernel)
    if ctx.needs_input_grad[1]:
        grad_hist = ops.scatter(input, grad, params, hist.shape[-1], ctx.order, ctx.kernel)
    return grad_input, grad_hist, None, None, None


def _register_autograd(op, backward, setup_context):
    # A C++ autograd (csrc/autograd, in the CMake-built library a C++ program
    # may link) is already loaded when the process has one: keep it.
    if not torch._C._dispatch_has_kernel_for_dispatch_key(op, "Autograd"):
        torch.library.register_autograd(op, backward, setup_context=setup_context)


_register_autograd("softhist::params", _params_backward, _params_setup)
_register_autograd("softhist::scatter", _scatter_backward, _scatter_setup)
_register_autograd("softhist::gather", _gather_backward, _gather_setup)
