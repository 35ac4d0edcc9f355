"""Fake kernels and autograd for ``torch.ops.softhist``, registered from Python
because the stable ABI the kernels are built on has no autograd. The autograd
kernels are registered as they are in C++: autograd.Functions at the Autograd
key.

Every op's derivative is another op one derivative order up (see
``csrc/kernels.h``), per axis: d scatter / d coords[a] = gather with axis a's
order + 1, d scatter / d weight = gather; d gather / d coords[a] = gather with
axis a's order + 1, d gather / d hist = scatter. The edge sums make a second
such pair (edge_scatter, edge_gather), and give params (the range and kappa,
one axis) its gradient: every op depends on an edge e_j only through
K^(m)(kappa (x - e_j)), so d/de_j is minus the edge sum one order up, times
the differences of the bins' gradients (see _params_grad). On the CPU,
scatter's first-order backward takes the gradients for x and params from one
pass over the samples (edge_gather_scatter). csrc/autograd builds the same for
C++ programs.
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


@torch.library.register_fake("softhist::edge_scatter")
def _edge_scatter_fake(x, weight, params, bins, order, kernel):
    _check_devices("edge_scatter", x, weight=weight, params=params)
    return x.new_empty(tuple(x.shape[:-1]) + (bins + 1,))


@torch.library.register_fake("softhist::edge_gather")
def _edge_gather_fake(x, coef, params, order, kernel):
    _check_devices("edge_gather", x, coef=coef, params=params)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.register_fake("softhist::edge_gather_scatter")
def _edge_gather_scatter_fake(x, weight, coef, params, order, kernel):
    _check_devices("edge_gather_scatter", x, weight=weight, coef=coef, params=params)
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            x.new_empty(tuple(x.shape[:-1]) + (coef.shape[-1],)),
            x.new_empty((), dtype=torch.float64))


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


def _differences(g):
    """g_j - g_(j-1) along the last dimension, with g_(-1) = g_bins = 0: the
    bins' gradients as their edges see them, (..., bins + 1)."""
    return torch.nn.functional.pad(g, (0, 1)) - torch.nn.functional.pad(g, (1, 0))


def _params_grad(params, x, grad_x, grad_edges, value_term, x_term=None):
    """params' gradient for a value of order m: one that depends on x, the
    edges e_j and kappa only through kappa^m K^(m)(kappa (x - e_j)). grad_x
    and grad_edges (..., bins + 1) are its gradients with respect to x and e,
    value_term = m <grad, value>, and x_term sum (x - e_0) grad_x when known
    (edge_gather_scatter's). The edges are lo + j (hi - lo) / bins,
    or params' explicit edges (after its first 4 values), which take
    grad_edges themselves. kappa's follows from homogeneity in (x - e_0,
    e - e_0, 1 / kappa): kappa d/dkappa = m + sum (x - e_0) d/dx + sum (e - e_0) d/de."""
    edges = grad_edges.shape[-1]
    g_e = grad_edges.to(torch.float64).reshape(-1, edges).sum(0)
    explicit = params.shape[1] > 4
    if explicit:
        offsets = params[0, 4:] - params[0, 4]
    else:
        frac = torch.arange(edges, dtype=torch.float64, device=params.device) / (edges - 1)
        offsets = frac * (params[0, 1] - params[0, 0])
    # NaN and inf samples (whose gradient is 0) add exactly 0.
    e0 = params[0, 4] if explicit else params[0, 0]
    if x_term is None:
        x_term = torch.dot(torch.nan_to_num(x.to(torch.float64).reshape(-1) - e0, 0.0, 0.0, 0.0),
                           grad_x.to(torch.float64).reshape(-1))
    g_kappa = (value_term + x_term + (offsets * g_e).sum()) / params[0, 2]
    zero = g_kappa.new_zeros(())
    if explicit:
        return torch.cat([torch.stack([zero, zero, g_kappa, zero]), g_e])[None]
    return torch.stack([((1 - frac) * g_e).sum(), (frac * g_e).sum(), g_kappa, zero])[None]


def _check_params_grad(params, kernel):
    if kernel == "hard":
        raise RuntimeError(
            "softhist: the hard kernel (exact counts) has no gradient with respect to the range "
            "or kappa; use a smooth kernel, or detach them"
        )
    if params.shape[0] != 1:
        raise RuntimeError(
            "softhist: gradients with respect to params (the range and kappa) are implemented "
            "for one axis (histc, histogram); detach params for joint histograms"
        )


def _one_pass(x):
    """Whether scatter's backward may take the gradients for x and params from
    edge_gather_scatter: on the CPU, and not when that backward is itself
    differentiated (edge_gather_scatter has no derivative; the separate ops do)."""
    return x.device.type == "cpu" and not torch.is_grad_enabled()


def _inner(a, b):
    return (a.to(torch.float64) * b.to(torch.float64)).sum()


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
        if needs[1]:
            _check_params_grad(params, kernel)
        one_pass = needs[1] and _one_pass(coords[0])
        grad_weight = ops.gather(coords, grad, params, orders, kernel) if needs[0] else None
        grad_coords = [  # (one_pass: x's below)
            _weighted(ops.gather(coords, grad, params, _raised(orders, a), kernel), weight)
            if (needs[5 + a] or (needs[1] and a == 0)) and not (one_pass and a == 0) else None
            for a in range(len(coords))
        ]
        grad_params = None
        if needs[1]:
            (x,), (m,) = coords[:1], orders[:1]
            bins, coef, x_term = grad.shape[-1], _differences(grad), None
            if one_pass:  # d/dx is the edge gather of the gradient's differences
                gathered, edge_sums, x_term = ops.edge_gather_scatter(x, weight, coef, params,
                                                                      m + 1, kernel)
                grad_coords[0] = _weighted(gathered, weight)
            else:
                edge_sums = ops.edge_scatter(x, weight, params, bins, m + 1, kernel)
            value = 0.0
            if m:
                value = m * _inner(grad, ops.scatter(coords, weight, params, [bins], orders, kernel))
            grad_params = _params_grad(params, x, grad_coords[0], -coef * edge_sums, value, x_term)
            if not needs[5]:
                grad_coords[0] = None
        return (grad_weight, grad_params, None, None, None, *grad_coords)


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
        if needs[1]:
            _check_params_grad(params, kernel)
        grad_hist = None
        if needs[0]:
            bins = list(hist.shape[hist.dim() - len(coords):])
            grad_hist = ops.scatter(coords, grad, params, bins, orders, kernel)
        grad_coords = [
            grad * ops.gather(coords, hist, params, _raised(orders, a), kernel)
            if needs[4 + a] or (needs[1] and a == 0) else None
            for a in range(len(coords))
        ]
        grad_params = None
        if needs[1]:
            (x,), (m,) = coords[:1], orders[:1]
            bins = hist.shape[-1]
            grad_edges = -_differences(hist) * ops.edge_scatter(x, grad, params, bins, m + 1, kernel)
            value = m * _inner(grad, ops.gather(coords, hist, params, orders, kernel)) if m else 0.0
            grad_params = _params_grad(params, x, grad_coords[0], grad_edges, value)
            if not needs[4]:
                grad_coords[0] = None
        return (grad_hist, grad_params, None, None, *grad_coords)


class _EdgeScatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, params, bins, order, kernel):
        ctx.save_for_backward(x, weight, params)
        ctx.order, ctx.kernel = order, kernel
        return _below_autograd(ops.edge_scatter.default, x, weight, params, bins, order, kernel)

    @staticmethod
    def backward(ctx, grad):
        x, weight, params = ctx.saved_tensors
        m, kernel, needs = ctx.order, ctx.kernel, ctx.needs_input_grad
        grad_weight = ops.edge_gather(x, grad, params, m, kernel) if needs[1] else None
        grad_x = None
        if needs[0] or needs[2]:
            grad_x = _weighted(ops.edge_gather(x, grad, params, m + 1, kernel), weight)
        grad_params = None
        if needs[2]:
            bins = grad.shape[-1] - 1
            grad_edges = -grad * ops.edge_scatter(x, weight, params, bins, m + 1, kernel)
            value = m * _inner(grad, ops.edge_scatter(x, weight, params, bins, m, kernel))
            grad_params = _params_grad(params, x, grad_x, grad_edges, value)
        return (grad_x if needs[0] else None, grad_weight, grad_params, None, None, None)


class _EdgeGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coef, params, order, kernel):
        ctx.save_for_backward(x, coef, params)
        ctx.order, ctx.kernel = order, kernel
        return _below_autograd(ops.edge_gather.default, x, coef, params, order, kernel)

    @staticmethod
    def backward(ctx, grad):
        x, coef, params = ctx.saved_tensors
        m, kernel, needs = ctx.order, ctx.kernel, ctx.needs_input_grad
        bins = coef.shape[-1] - 1
        grad_coef = ops.edge_scatter(x, grad, params, bins, m, kernel) if needs[1] else None
        grad_x = None
        if needs[0] or needs[2]:
            grad_x = grad * ops.edge_gather(x, coef, params, m + 1, kernel)
        grad_params = None
        if needs[2]:
            grad_edges = -coef * ops.edge_scatter(x, grad, params, bins, m + 1, kernel)
            value = m * _inner(grad, ops.edge_gather(x, coef, params, m, kernel))
            grad_params = _params_grad(params, x, grad_x, grad_edges, value)
        return (grad_x if needs[0] else None, grad_coef, grad_params, None, None)


def _params_autograd(input, bins, min, max, kappa, kernel, conserve_mass=False):
    # A constant for autograd: computed below the Autograd key, so it has no
    # history.
    return _below_autograd(ops.params.default, input, bins, min, max, kappa, kernel, conserve_mass)


def _scatter_autograd(coords, weight, params, bins, orders, kernel):
    return _Scatter.apply(weight, params, bins, orders, kernel, *coords)


def _gather_autograd(coords, hist, params, orders, kernel):
    return _Gather.apply(hist, params, orders, kernel, *coords)


def _edge_scatter_autograd(x, weight, params, bins, order, kernel):
    return _EdgeScatter.apply(x, weight, params, bins, order, kernel)


def _edge_gather_autograd(x, coef, params, order, kernel):
    return _EdgeGather.apply(x, coef, params, order, kernel)


_library = torch.library.Library("softhist", "IMPL")


def _register_autograd(name, kernel):
    # A C++ autograd (csrc/autograd, in the CMake-built library a C++ program
    # may link) is already loaded when the process has one: keep it.
    if not torch._C._dispatch_has_kernel_for_dispatch_key(f"softhist::{name}", "Autograd"):
        _library.impl(name, kernel, "Autograd")


_register_autograd("params", _params_autograd)
_register_autograd("scatter", _scatter_autograd)
_register_autograd("gather", _gather_autograd)
_register_autograd("edge_scatter", _edge_scatter_autograd)
_register_autograd("edge_gather", _edge_gather_autograd)
