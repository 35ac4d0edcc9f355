"""Fake kernels and autograd for ``torch.ops.softhist``, registered from Python
because the stable ABI the kernels are built on has no autograd.

Every op's derivative is another op one derivative order up (see
``csrc/kernels.h``), per axis: d scatter / d coords[a] = gather with axis a's
order + 1, d scatter / d weight = gather; d gather / d coords[a] = gather with
axis a's order + 1, d gather / d hist = scatter. csrc/autograd builds the same
for C++ programs.
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
def _scatter_fake(coords, weight, params, bins, orders, kernel):
    _check_devices("scatter", coords[0], **_named(coords), weight=weight, params=params)
    return coords[0].new_empty(tuple(coords[0].shape[:-1]) + tuple(bins))


@torch.library.register_fake("softhist::gather")
def _gather_fake(coords, hist, params, orders, kernel):
    _check_devices("gather", coords[0], **_named(coords), hist=hist, params=params)
    return torch.empty_like(coords[0], memory_format=torch.contiguous_format)


def _named(coords):
    return {f"coords[{a}]": c for a, c in enumerate(coords)}


def _params_setup(ctx, inputs, output):
    ctx.mark_non_differentiable(output)


def _params_backward(ctx, grad):
    return None, None, None, None, None, None, None


def _raised(orders, axis):
    """orders with axis's one higher: the derivative along that axis."""
    return [o + (a == axis) for a, o in enumerate(orders)]


def _scatter_setup(ctx, inputs, output):
    coords, weight, params, bins, orders, kernel = inputs
    ctx.save_for_backward(weight, params, *coords)
    ctx.orders, ctx.kernel = list(orders), kernel
    ctx.coords_need_grad = [c.requires_grad for c in coords]


def _scatter_backward(ctx, grad):
    weight, params, *coords = ctx.saved_tensors
    orders, kernel = ctx.orders, ctx.kernel
    grad_coords = [
        _weighted(ops.gather(coords, grad, params, _raised(orders, a), kernel), weight)
        if needed else None
        for a, needed in enumerate(ctx.coords_need_grad)
    ]
    grad_weight = ops.gather(coords, grad, params, orders, kernel) if ctx.needs_input_grad[1] else None
    return grad_coords, grad_weight, None, None, None, None


def _gather_setup(ctx, inputs, output):
    coords, hist, params, orders, kernel = inputs
    ctx.save_for_backward(hist, params, *coords)
    ctx.orders, ctx.kernel = list(orders), kernel
    ctx.coords_need_grad = [c.requires_grad for c in coords]


def _gather_backward(ctx, grad):
    hist, params, *coords = ctx.saved_tensors
    orders, kernel = ctx.orders, ctx.kernel
    grad_coords = [
        grad * ops.gather(coords, hist, params, _raised(orders, a), kernel) if needed else None
        for a, needed in enumerate(ctx.coords_need_grad)
    ]
    grad_hist = None
    if ctx.needs_input_grad[1]:
        bins = list(hist.shape[hist.dim() - len(coords):])
        grad_hist = ops.scatter(coords, grad, params, bins, orders, kernel)
    return grad_coords, grad_hist, None, None, None


def _register_autograd(op, backward, setup_context):
    # A C++ autograd (csrc/autograd, in the CMake-built library a C++ program
    # may link) is already loaded when the process has one: keep it.
    if not torch._C._dispatch_has_kernel_for_dispatch_key(op, "Autograd"):
        torch.library.register_autograd(op, backward, setup_context=setup_context)


_register_autograd("softhist::params", _params_backward, _params_setup)
_register_autograd("softhist::scatter", _scatter_backward, _scatter_setup)
_register_autograd("softhist::gather", _gather_backward, _gather_setup)
