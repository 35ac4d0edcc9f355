"""Fake kernels and autograd for ``torch.ops.softhist``, registered from Python
because the stable ABI the kernels are built on has no autograd. The autograd
kernels are registered as they are in C++: autograd.Functions at the Autograd
key.

Every op's derivative is another op one derivative order up (see
``csrc/kernels.h``), per axis: d scatter / d coords[a] = gather with axis a's
order + 1, d scatter / d weight = gather; d gather / d coords[a] = gather with
axis a's order + 1, d gather / d hist = scatter. params (the range or edges,
and kappa of each axis) gets its gradient axis by axis: every op depends on
an edge e_j of axis a only through K^(m)(kappa (x - e_j)), so d/de_j is minus
the op with axis a one order up and at its edges (edge_axes), times the
upstream values there (see _edge_grad and _params_row_grad). On the CPU, one
axis's first-order backward takes the gradients for x and params from one
pass over the samples (edge_gather_scatter), whose scatter, for a forward of
order 0 over Chebyshev pieces, its forward took from its own moments
(scatter_edge_sums). Over uneven pieces, where locating a sample costs about
as much as the rest of its pass, scatter's forward keeps each sample's place
(scatter_places) for its backward's gathers (gather_at_places). csrc/autograd
builds the same for C++ programs.
"""

import torch
from torch.autograd import forward_ad

from . import _sums
from ._ranges import compute_dtype

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
    # bin) keeps exactly 0 whatever its weight (no 0 * inf, in the derivative
    # of this product either).
    return grad if weight is None else grad * torch.where(grad == 0, 1.0, weight)


def _upcast16(*tensors):
    """The tensors in compute_dtype (16-bit ones as float32), for params'
    gradient: its edge sums reach bins / width samples (past float16's
    65504), and kappa's cancels large terms that 16-bit rounding would
    spoil; and for the samples' gradients where a per-sample factor (the
    weights, or gather's upstream gradient) multiplies a gather, which alone
    may pass 65504 where the product does not. The inputs' gradients come
    back in their dtypes (autograd casts them). As csrc/autograd's upcast16."""
    return [t if t is None else t.to(compute_dtype(t)) for t in tensors]


@torch.library.register_fake("softhist::params")
def _params_fake(input, bins, min, max, kappa, kernel, conserve_mass=False):
    return input.new_empty((4,), dtype=torch.float64)


@torch.library.register_fake("softhist::scatter")
def _scatter_fake(coords, weight, params, bins, orders, kernel, edge_axes=()):
    _check_devices("scatter", coords[0], **_named(coords), weight=weight, params=params)
    slots = [b + (a in edge_axes) for a, b in enumerate(bins)]
    return coords[0].new_empty(tuple(coords[0].shape[:-1]) + tuple(slots))


@torch.library.register_fake("softhist::gather")
def _gather_fake(coords, hist, params, orders, kernel, edge_axes=()):
    _check_devices("gather", coords[0], **_named(coords), hist=hist, params=params)
    return torch.empty_like(coords[0], memory_format=torch.contiguous_format)


@torch.library.register_fake("softhist::edge_gather_scatter")
def _edge_gather_scatter_fake(x, weight, coef, params, order, kernel, sums=None, taken=None,
                              gather=True):
    _check_devices("edge_gather_scatter", x, weight=weight, coef=coef, params=params, sums=sums,
                   taken=taken)
    return (torch.empty_like(x, memory_format=torch.contiguous_format) if gather
            else x.new_empty((0,)),
            x.new_empty(tuple(x.shape[:-1]) + (coef.shape[-1],)),
            x.new_empty((), dtype=torch.float64))


@torch.library.register_fake("softhist::scatter_edge_sums")
def _scatter_edge_sums_fake(x, weight, params, bins, kernel):
    _check_devices("scatter_edge_sums", x, weight=weight, params=params)
    lead = tuple(x.shape[:-1])
    return (x.new_empty(lead + (bins,)), x.new_empty(lead + (2, bins + 1), dtype=torch.float64),
            x.new_empty((), dtype=torch.bool))


@torch.library.register_fake("softhist::scatter_places")
def _scatter_places_fake(x, weight, params, bins, kernel):
    _check_devices("scatter_places", x, weight=weight, params=params)
    return (x.new_empty(tuple(x.shape[:-1]) + (bins,)), x.new_empty(x.shape, dtype=torch.int32),
            x.new_empty(x.shape, dtype=compute_dtype(x)), x.new_empty((), dtype=torch.bool))


@torch.library.register_fake("softhist::gather_at_places")
def _gather_at_places_fake(x, hist, params, order, kernel, pieces, deltas, taken):
    _check_devices("gather_at_places", x, hist=hist, params=params, pieces=pieces, deltas=deltas,
                   taken=taken)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


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


def _differences(g, dim=-1):
    """g_j - g_(j-1) along dim, with g_(-1) = g_bins = 0: the bins' gradients
    as their edges see them (bins + 1 along dim)."""
    g = g.movedim(dim, -1)
    return (torch.nn.functional.pad(g, (0, 1)) - torch.nn.functional.pad(g, (1, 0))).movedim(-1, dim)


def _edge_grad(upstream, sums, a, axes, edge_axes):
    """The gradient with respect to axis a's edges (float64, bins + 1): sums
    are the op's value with axis a one order up and at its edges, upstream the
    values they pair with: themselves when axis a is at its edges already (a
    value per edge), else their differences. Summed over every other dimension."""
    dim = upstream.dim() - axes + a
    coef = upstream if a in edge_axes else _differences(upstream, dim)
    g = (-coef * sums).to(torch.float64).movedim(dim, -1)
    return g.reshape(-1, g.shape[-1]).sum(0)


def _params_row_grad(params, a, x, grad_x, grad_edges, value_term, x_term=None):
    """Row a of params' gradient, for a value of order m along axis a: one that
    depends on x, the axis's edges e_j and kappa only through
    kappa^m K^(m)(kappa (x - e_j)). grad_x and grad_edges (float64, bins + 1)
    are its gradients with respect to x and e, value_term = m <grad, value>,
    and x_term sum (x - e_0) grad_x when known (edge_gather_scatter's). The
    edges are lo + j (hi - lo) / bins, or the row's explicit edges (after its
    first 4 values, then padding, whose gradient is 0), which take grad_edges
    themselves. kappa's follows from homogeneity in (x - e_0, e - e_0,
    1 / kappa): kappa d/dkappa = m + sum (x - e_0) d/dx + sum (e - e_0) d/de."""
    row, edges = params[a], grad_edges.shape[0]
    explicit = params.shape[1] > 4
    if explicit:
        offsets = row[4:4 + edges] - row[4]
    else:
        frac = torch.arange(edges, dtype=torch.float64, device=params.device) / (edges - 1)
        offsets = frac * (row[1] - row[0])
    # NaN and inf samples (whose gradient is 0) add exactly 0.
    e0 = row[4] if explicit else row[0]
    if x_term is None:
        x_term = _sums.dot(torch.nan_to_num(x.to(torch.float64) - e0, 0.0, 0.0, 0.0), grad_x)
    g_kappa = (value_term + x_term + _sums.dot(offsets, grad_edges)) / row[2]
    zero = g_kappa.new_zeros(())
    if explicit:
        head = torch.cat([torch.stack([zero, zero, g_kappa, zero]), grad_edges])
        return torch.nn.functional.pad(head, (0, params.shape[1] - head.shape[0]))
    return torch.stack([_sums.dot(1 - frac, grad_edges), _sums.dot(frac, grad_edges), g_kappa, zero])


def _check_params_grad(kernel):
    if kernel == "hard":
        raise RuntimeError(
            "softhist: the hard kernel (exact counts) has no gradient with respect to the range, "
            "edges or kappa; use a smooth kernel, or detach them"
        )


def _one_pass(coords, edge_axes):
    """Whether scatter's backward may take the gradients for x and params from
    edge_gather_scatter: one axis, on the CPU, and not when that backward is
    itself differentiated (edge_gather_scatter has no derivative; the others do)."""
    return (len(coords) == 1 and not edge_axes and coords[0].device.type == "cpu"
            and not torch.is_grad_enabled())


def _saves_edge_sums(needs_params, coords, orders, kernel, edge_axes):
    """Whether scatter's forward is scatter_edge_sums, which takes the edge
    sums its first-order backward needs for params where that costs less than
    the backward's pass: one axis at order 0, on the CPU, when params needs a
    gradient (the hard kernel has none: its backward says so)."""
    return (needs_params and len(coords) == 1 and list(orders) == [0] and not edge_axes
            and coords[0].device.type == "cpu" and kernel != "hard")


def _keeps_places(needs, params, coords, orders, kernel, edge_axes):
    """Whether scatter's forward is scatter_places, which keeps the places of
    the samples for its backward's gathers where locating them costs about as
    much as the rest of a pass (it says where: uneven pieces, which only the
    compact kernels take): one axis at order 0 over explicit edges, on the
    CPU, when x or the weights (needs: scatter's needs_input_grad) need a
    gradient; as csrc/autograd's rule."""
    return (len(coords) == 1 and (needs[0] or needs[6]) and list(orders) == [0] and not edge_axes
            and params.dim() == 2 and params.shape[1] > 4 and coords[0].device.type == "cpu"
            and kernel in ("triangular", "bspline", "box"))


def _params_grad(coords, weight, upstream, params, bins, orders, kernel, edge_axes, grad_coords,
                  value_term):
    """params' gradient (a row per axis) for either op: per axis a, the edge
    sums of the samples weighted by `weight` (scatter's weights, gather's
    upstream gradient) against `upstream` (scatter's upstream gradient,
    gather's hist; see _edge_grad), grad_coords[a] the op's gradient for
    coords[a], value_term(m) the kappa^m term."""
    rows = []
    for a in range(len(coords)):
        sums = ops.scatter(coords, weight, params, bins, _raised(orders, a), kernel,
                           _with_axis(edge_axes, a))
        rows.append(_params_row_grad(params, a, coords[a], grad_coords[a],
                                 _edge_grad(upstream, sums, a, len(coords), edge_axes),
                                 value_term(orders[a])))
    return torch.stack(rows)


def _with_axis(edge_axes, a):
    return list(edge_axes) if a in edge_axes else list(edge_axes) + [a]


def _bins_of(hist, axes, edge_axes):
    """The histogram's bins from its slots (one more on the axes at their edges)."""
    return [s - (a in edge_axes) for a, s in enumerate(hist.shape[hist.dim() - axes:])]


class _Scatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, params, bins, orders, kernel, edge_axes, *coords):
        ctx.orders, ctx.kernel, ctx.edge_axes = list(orders), kernel, list(edge_axes)
        needs = ctx.needs_input_grad
        sums = taken = pieces = deltas = kept = None
        if _saves_edge_sums(needs[1], coords, orders, kernel, edge_axes):
            hist, sums, taken = _below_autograd(ops.scatter_edge_sums.default, coords[0], weight,
                                                params, bins[0], kernel)
        elif _keeps_places(needs, params, coords, orders, kernel, edge_axes):
            hist, pieces, deltas, kept = _below_autograd(ops.scatter_places.default, coords[0],
                                                         weight, params, bins[0], kernel)
        else:
            hist = _below_autograd(ops.scatter.default, list(coords), weight, params, bins, orders,
                                   kernel, edge_axes)
        ctx.save_for_backward(weight, params, sums, taken, pieces, deltas, kept, *coords)
        return hist

    @staticmethod
    def backward(ctx, grad):
        weight, params, sums, taken, pieces, deltas, kept, *coords = ctx.saved_tensors
        orders, kernel, edge_axes, needs = ctx.orders, ctx.kernel, ctx.edge_axes, ctx.needs_input_grad
        axes = len(coords)
        if needs[1]:
            _check_params_grad(kernel)
        if needs[1] or (weight is not None and any(needs[6:])):  # (_upcast16)
            weight, grad, *coords = _upcast16(weight, grad, *coords)
        one_pass = needs[1] and _one_pass(coords, edge_axes)
        bins = _bins_of(grad, axes, edge_axes)

        def gather(orders):
            # (at the forward's places where it kept them, unless this backward
            # is itself differentiated: gather_at_places has no derivative)
            if pieces is not None and not torch.is_grad_enabled():
                return ops.gather_at_places(coords[0], grad, params, orders[0], kernel, pieces,
                                            deltas, kept)
            return ops.gather(coords, grad, params, orders, kernel, edge_axes)

        grad_weight = gather(orders) if needs[0] else None
        grad_coords = [  # (one_pass: x's below)
            _weighted(gather(_raised(orders, a)), weight)
            if (needs[6 + a] or needs[1]) and not one_pass else None
            for a in range(axes)
        ]
        grad_params = None
        if needs[1]:
            def value_term(m):
                if not m:
                    return 0.0
                return m * _sums.dot(grad, ops.scatter(coords, weight, params, bins, orders, kernel,
                                                    edge_axes))
            if one_pass:  # d/dx is the edge gather of the gradient's differences
                gathered, edge_sums, x_term = ops.edge_gather_scatter(
                    coords[0], weight, _differences(grad), params, orders[0] + 1, kernel, sums,
                    taken, gather=needs[6])
                grad_coords[0] = _weighted(gathered, weight) if needs[6] else None
                g_e = _edge_grad(grad, edge_sums, 0, 1, edge_axes)
                grad_params = _params_row_grad(params, 0, coords[0], grad_coords[0], g_e,
                                               value_term(orders[0]), x_term)[None]
            else:
                grad_params = _params_grad(coords, weight, grad, params, bins, orders, kernel,
                                            edge_axes, grad_coords, value_term)
        grad_coords = [g if needs[6 + a] else None for a, g in enumerate(grad_coords)]
        return (grad_weight, grad_params, None, None, None, None, *grad_coords)


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hist, params, orders, kernel, edge_axes, *coords):
        ctx.save_for_backward(hist, params, *coords)
        ctx.orders, ctx.kernel, ctx.edge_axes = list(orders), kernel, list(edge_axes)
        return _below_autograd(ops.gather.default, list(coords), hist, params, orders, kernel,
                               edge_axes)

    @staticmethod
    def backward(ctx, grad):
        hist, params, *coords = ctx.saved_tensors
        orders, kernel, edge_axes, needs = ctx.orders, ctx.kernel, ctx.edge_axes, ctx.needs_input_grad
        axes = len(coords)
        if needs[1]:
            _check_params_grad(kernel)
        if needs[1] or any(needs[5:]):  # (_upcast16)
            hist, grad, *coords = _upcast16(hist, grad, *coords)
        bins = _bins_of(hist, axes, edge_axes)
        grad_hist = ops.scatter(coords, grad, params, bins, orders, kernel, edge_axes) if needs[0] else None
        grad_coords = [
            grad * ops.gather(coords, hist, params, _raised(orders, a), kernel, edge_axes)
            if needs[5 + a] or needs[1] else None
            for a in range(axes)
        ]
        grad_params = None
        if needs[1]:
            def value_term(m):
                if not m:
                    return 0.0
                return m * _sums.dot(grad, ops.gather(coords, hist, params, orders, kernel, edge_axes))
            grad_params = _params_grad(coords, grad, hist, params, bins, orders, kernel,
                                        edge_axes, grad_coords, value_term)
        grad_coords = [g if needs[5 + a] else None for a, g in enumerate(grad_coords)]
        return (grad_hist, grad_params, None, None, None, *grad_coords)


def _records(coords, *others):
    """Whether autograd records this call, as autograd.Function.apply decides.
    Calls it would not record (no grad mode, as in every backward that is not
    differentiated itself, or no input that requires grad) skip apply, whose
    overhead outweighs a small input's kernel. Under forward-mode AD or a
    torch.func transform, apply it is: it raises for them (no jvp, no vmap
    rule), where the op below autograd would drop their tangents."""
    if forward_ad._current_level >= 0 or torch._C._functorch.maybe_current_level() is not None:
        return True
    if not torch.is_grad_enabled():
        return False
    return any(t is not None and t.requires_grad for t in [*coords, *others])


# edge_axes=None: AOTInductor's packages call the ops without their defaulted
# arguments, whose int[] it passes as None.
def _scatter_autograd(coords, weight, params, bins, orders, kernel, edge_axes=()):
    edge_axes = edge_axes or ()
    if not _records(coords, weight, params):
        return _below_autograd(ops.scatter.default, coords, weight, params, bins, orders, kernel,
                               edge_axes)
    return _Scatter.apply(weight, params, bins, orders, kernel, edge_axes, *coords)


def _gather_autograd(coords, hist, params, orders, kernel, edge_axes=()):
    edge_axes = edge_axes or ()
    if not _records(coords, hist, params):
        return _below_autograd(ops.gather.default, coords, hist, params, orders, kernel, edge_axes)
    return _Gather.apply(hist, params, orders, kernel, edge_axes, *coords)


_library = torch.library.Library("softhist", "IMPL")


def _register_autograd(name, kernel):
    # A C++ autograd (csrc/autograd, in the CMake-built library a C++ program
    # may link) is already loaded when the process has one: keep it.
    if not torch._C._dispatch_has_kernel_for_dispatch_key(f"softhist::{name}", "Autograd"):
        _library.impl(name, kernel, "Autograd")


# params is a constant for autograd (the data's range never gets a gradient):
# no autograd kernel, its result never joins the graph.
_register_autograd("params", torch.library.fallthrough_kernel)
_register_autograd("scatter", _scatter_autograd)
_register_autograd("gather", _gather_autograd)
