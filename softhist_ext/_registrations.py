"""Fake kernels and autograd for ``torch.ops.softhist``, registered from Python
because the stable ABI the kernels are built on has no autograd. The autograd
kernels are registered as they are in C++: autograd.Functions at the Autograd
key.

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


def _raised(orders, axis):
    """orders with axis's one higher: the derivative along that axis."""
    return [o + (a == axis) for a, o in enumerate(orders)]


# The autograd kernels are plain autograd.Functions registered at the Autograd
# key. torch.library.register_autograd would do the same, but its generic
# argument handling (pytrees, default filling) cost more than the op itself on
# small inputs. Coordinates are passed unpacked so each gets its own gradient.


def _below_autograd(op, *args):
    with torch._C._AutoDispatchBelowAutograd():
        return op(*args)


class _Scatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, params, bins, orders, kernel, *coords):
        ctx.save_for_backward(weight, params, *coords)
        ctx.orders, ctx.kernel = list(orders), kernel
        return _below_autograd(ops.scatter.default, list(coords), weight, params, bins, orders, kernel)

    @staticmethod
    def backward(ctx, grad):
        weight, params, *coords = ctx.saved_tensors
        orders, kernel, needs = ctx.orders, ctx.kernel, ctx.needs_input_grad
        grad_weight = ops.gather(coords, grad, params, orders, kernel) if needs[0] else None
        grad_coords = [
            _weighted(ops.gather(coords, grad, params, _raised(orders, a), kernel), weight)
            if needs[5 + a] else None
            for a in range(len(coords))
        ]
        return (grad_weight, None, None, None, None, *grad_coords)


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hist, params, orders, kernel, *coords):
        ctx.save_for_backward(hist, params, *coords)
        ctx.orders, ctx.kernel = list(orders), kernel
        return _below_autograd(ops.gather.default, list(coords), hist, params, orders, kernel)

    @staticmethod
    def backward(ctx, grad):
        hist, params, *coords = ctx.saved_tensors
        orders, kernel, needs = ctx.orders, ctx.kernel, ctx.needs_input_grad
        grad_hist = None
        if needs[0]:
            bins = list(hist.shape[hist.dim() - len(coords):])
            grad_hist = ops.scatter(coords, grad, params, bins, orders, kernel)
        grad_coords = [
            grad * ops.gather(coords, hist, params, _raised(orders, a), kernel) if needs[4 + a] else None
            for a in range(len(coords))
        ]
        return (grad_hist, None, None, None, *grad_coords)


def _params_autograd(input, bins, min, max, kappa, kernel, conserve_mass=False):
    # A constant for autograd: computed below the Autograd key, so it has no
    # history.
    return _below_autograd(ops.params.default, input, bins, min, max, kappa, kernel, conserve_mass)


def _scatter_autograd(coords, weight, params, bins, orders, kernel):
    return _Scatter.apply(weight, params, bins, orders, kernel, *coords)


def _gather_autograd(coords, hist, params, orders, kernel):
    return _Gather.apply(hist, params, orders, kernel, *coords)


_library = torch.library.Library("softhist", "IMPL")


def _register_autograd(name, kernel):
    # A C++ autograd (csrc/autograd, in the CMake-built library a C++ program
    # may link) is already loaded when the process has one: keep it.
    if not torch._C._dispatch_has_kernel_for_dispatch_key(f"softhist::{name}", "Autograd"):
        _library.impl(name, kernel, "Autograd")


_register_autograd("params", _params_autograd)
_register_autograd("scatter", _scatter_autograd)
_register_autograd("gather", _gather_autograd)
