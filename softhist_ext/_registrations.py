"""Fake kernels and autograd for ``torch.ops.softhist``, registered from Python
because the stable ABI the kernels are built on has no autograd.

Every op's derivative is another op one derivative order up (see
``csrc/kernels.h``): d scatter_m = gather_{m+1} (x) and gather_m (weight);
d gather_m = gather_{m+1} (x) and scatter_m (hist). The joint ops scatter2d
and gather2d work alike, with one order per axis.
"""

import torch

ops = torch.ops.softhist


def _check_devices(op, input, **others):
    # A meta tensor beside real ones would send the call here, to the fake
    # kernel, and return garbage: refuse it as the real kernels' checks would.
    for name, t in others.items():
        if t is not None and t.device != input.device:
            raise RuntimeError(
                f"softhist: {op}: {name} is on {t.device}, but the input is on "
                f"{input.device}; move it to the input's device"
            )


def _weighted(grad, weight):
    # grad * weight, where a sample with no gradient (NaN/inf, or reaching no
    # bin) keeps exactly 0 whatever its weight (no 0 * inf).
    return grad if weight is None else torch.where(grad == 0, grad, grad * weight)


@torch.library.register_fake("softhist::params")
def _params_fake(input, bins, min, max, kappa, kernel, conserve_mass=False):
    return input.new_empty((4,), dtype=torch.float64)


@torch.library.register_fake("softhist::scatter")
def _scatter_fake(input, weight, params, bins, order, kernel):
    _check_devices("scatter", input, weight=weight, params=params)
    return input.new_empty(tuple(input.shape[:-1]) + (bins,))


@torch.library.register_fake("softhist::gather")
def _gather_fake(input, hist, params, order, kernel):
    _check_devices("gather", input, hist=hist, params=params)
    return torch.empty_like(input, memory_format=torch.contiguous_format)


@torch.library.register_fake("softhist::scatter2d")
def _scatter2d_fake(x, y, weight, params_x, params_y, bins_x, bins_y, order_x, order_y, kernel):
    _check_devices("scatter2d", x, y=y, weight=weight, params_x=params_x, params_y=params_y)
    return x.new_empty(tuple(x.shape[:-1]) + (bins_x, bins_y))


@torch.library.register_fake("softhist::gather2d")
def _gather2d_fake(x, y, hist, params_x, params_y, order_x, order_y, kernel):
    _check_devices("gather2d", x, y=y, hist=hist, params_x=params_x, params_y=params_y)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _params_setup(ctx, inputs, output):
    ctx.mark_non_differentiable(output)


def _params_backward(ctx, grad):
    return None, None, None, None, None, None, None


def _scatter_setup(ctx, inputs, output):
    input, weight, params, bins, order, kernel = inputs
    ctx.save_for_backward(input, weight, params)
    ctx.order, ctx.kernel = order, kernel


def _scatter_backward(ctx, grad):
    input, weight, params = ctx.saved_tensors
    grad_input = grad_weight = None
    if ctx.needs_input_grad[0]:
        grad_input = _weighted(ops.gather(input, grad, params, ctx.order + 1, ctx.kernel), weight)
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


def _scatter2d_setup(ctx, inputs, output):
    x, y, weight, params_x, params_y, bins_x, bins_y, order_x, order_y, kernel = inputs
    ctx.save_for_backward(x, y, weight, params_x, params_y)
    ctx.orders, ctx.kernel = (order_x, order_y), kernel


def _scatter2d_backward(ctx, grad):
    x, y, weight, px, py = ctx.saved_tensors
    (ox, oy), k = ctx.orders, ctx.kernel
    grad_x = grad_y = grad_weight = None
    if ctx.needs_input_grad[0]:
        grad_x = _weighted(ops.gather2d(x, y, grad, px, py, ox + 1, oy, k), weight)
    if ctx.needs_input_grad[1]:
        grad_y = _weighted(ops.gather2d(x, y, grad, px, py, ox, oy + 1, k), weight)
    if ctx.needs_input_grad[2]:
        grad_weight = ops.gather2d(x, y, grad, px, py, ox, oy, k)
    return grad_x, grad_y, grad_weight, None, None, None, None, None, None, None


def _gather2d_setup(ctx, inputs, output):
    x, y, hist, params_x, params_y, order_x, order_y, kernel = inputs
    ctx.save_for_backward(x, y, hist, params_x, params_y)
    ctx.orders, ctx.kernel = (order_x, order_y), kernel


def _gather2d_backward(ctx, grad):
    x, y, hist, px, py = ctx.saved_tensors
    (ox, oy), k = ctx.orders, ctx.kernel
    grad_x = grad_y = grad_hist = None
    if ctx.needs_input_grad[0]:
        grad_x = grad * ops.gather2d(x, y, hist, px, py, ox + 1, oy, k)
    if ctx.needs_input_grad[1]:
        grad_y = grad * ops.gather2d(x, y, hist, px, py, ox, oy + 1, k)
    if ctx.needs_input_grad[2]:
        bins_x, bins_y = hist.shape[-2], hist.shape[-1]
        grad_hist = ops.scatter2d(x, y, grad, px, py, bins_x, bins_y, ox, oy, k)
    return grad_x, grad_y, grad_hist, None, None, None, None, None


def _register_autograd(op, backward, setup_context):
    # A C++ autograd (csrc/autograd, in the CMake-built library a C++ program
    # may link) is already loaded when the process has one: keep it.
    if not torch._C._dispatch_has_kernel_for_dispatch_key(op, "Autograd"):
        torch.library.register_autograd(op, backward, setup_context=setup_context)


_register_autograd("softhist::params", _params_backward, _params_setup)
_register_autograd("softhist::scatter", _scatter_backward, _scatter_setup)
_register_autograd("softhist::gather", _gather_backward, _gather_setup)
_register_autograd("softhist::scatter2d", _scatter2d_backward, _scatter2d_setup)
_register_autograd("softhist::gather2d", _gather2d_backward, _gather2d_setup)
