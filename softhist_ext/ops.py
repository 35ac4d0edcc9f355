"""Typed, scriptable wrappers around ``torch.ops.softhist``."""

import builtins
import numbers
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union, cast

import torch
from torch import Tensor

from . import _checks, _sums
from ._ranges import compute_dtype


def _number(v: Union[float, Tensor]) -> float:
    if isinstance(v, Tensor):
        if v.numel() != 1 or v.is_complex():
            raise ValueError(f"softhist: a range or kappa given as a tensor must hold one real "
                             f"number (0-d), got shape {list(v.shape)}")
        return float(v.item())
    return float(v)


def _kappa_to_check(kappa: Union[None, float, Tensor]) -> Optional[float]:
    """kappa for the params op, which checks it; a tensor's value is checked
    eagerly only (torch.compile traces it as a symbol the op can't take)."""
    if kappa is None:
        return None
    if isinstance(kappa, Tensor) and not torch.jit.is_scripting() and torch.compiler.is_compiling():
        return None
    return _number(kappa)


def _is_tensor(v: Union[None, float, Tensor]) -> bool:
    # (A function: TorchScript's saved code mistypes isinstance refinements
    # chained with `or`.)
    return isinstance(v, Tensor)


def _scalar_param(v: Union[float, Tensor], like: Tensor) -> Tensor:
    """v as a 0-d float64 tensor on like's device; a tensor keeps its autograd history."""
    if isinstance(v, Tensor):
        return v.to(like.device, torch.float64).reshape(())
    if not torch.jit.is_scripting():
        if isinstance(v, (torch.SymFloat, torch.SymInt)):  # (export's sizes: float() would fix them)
            return torch.full((), v, dtype=torch.float64, device=like.device)
    return torch.full((), float(v), dtype=torch.float64, device=like.device)


def _tensor_row(x: Tensor, bins: int, lo: Union[float, Tensor], hi: Union[float, Tensor],
                kappa: Union[None, float, Tensor], kernel: str, conserve_mass: bool) -> Tensor:
    """The params row [lo, hi, kappa, open] as tensors that keep their
    autograd history, with no value read on the host (so torch.compile
    neither guards on them nor breaks its graph; the values are unchecked):
    kappa=None is the default for bins even bins over [lo, hi], histc's, a
    function of lo and hi."""
    lo_t, hi_t = _scalar_param(lo, x), _scalar_param(hi, x)
    if kappa is None:
        # kappa * width for kappa=None: the params op's policy, asked of it
        width_kappa = torch.ops.softhist.params(x.reshape(-1)[:1].detach(), 1, 0.0, 1.0, None, kernel, False)[2]
        kappa_t = width_kappa * bins / (hi_t - lo_t)
    else:
        kappa_t = _scalar_param(kappa, x)
    flag = torch.full((), 1.0 if conserve_mass else 0.0, dtype=torch.float64, device=x.device)
    return torch.stack([lo_t, hi_t, kappa_t, flag])


def _params_row(x: Tensor, bins: int, min: Union[float, Tensor], max: Union[float, Tensor],
                kappa: Union[None, float, Tensor], kernel: str, conserve_mass: bool) -> Tensor:
    """torch.ops.softhist.params' row [lo, hi, kappa, open] for x, where min, max
    and kappa given as tensors take part in autograd; kappa=None then follows
    the bin width (kappa * width stays the default)."""
    if not torch.jit.is_scripting():
        if torch.compiler.is_compiling() and (_is_tensor(min) or _is_tensor(max)):
            return _tensor_row(x, bins, min, max, kappa, kernel, conserve_mass)
    lo, hi = _number(min), _number(max)
    row = torch.ops.softhist.params(x, bins, lo, hi, _kappa_to_check(kappa), kernel, conserve_mass)
    if not (_is_tensor(min) or _is_tensor(max) or _is_tensor(kappa)):
        return row
    if lo == hi:  # the data's range, a constant
        if not (_is_tensor(min) or _is_tensor(max)):
            if isinstance(kappa, Tensor):  # (not chained: see _is_tensor)
                return torch.stack([row[0], row[1], _scalar_param(kappa, row), row[3]])
        raise ValueError(f"softhist: a range given as tensors needs min < max, got min = max = {lo}; "
                         "a range of one point (histc's data range, histogram's point widened by "
                         "0.5) is a constant for autograd: pass numbers")
    lo_t, hi_t = _scalar_param(min, row), _scalar_param(max, row)
    kappa_t = row[2]
    if isinstance(kappa, Tensor):
        kappa_t = _scalar_param(kappa, row)
    elif kappa is None:
        kappa_t = row[2] * ((hi - lo) / (hi_t - lo_t))
    return torch.stack([lo_t, hi_t, kappa_t, row[3]])


def _plain(v: Any) -> Any:
    """v (or each entry of the list or tuple v) with NumPy scalars, and 0-d
    tensors that need no gradient, as Python numbers: what the joint
    histograms' code takes. Eager mode only (a tensor's value is read on the
    host); tensors that require grad stay, to get gradients."""
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(u) for u in v)
    if isinstance(v, Tensor):
        if v.dim() != 0 or v.requires_grad or torch.compiler.is_compiling():
            return v
        return int(v.item()) if _checks.is_int(v) else float(v.item())
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return float(v)
    return v


def _holds_tensor(v: object) -> bool:
    """Whether v, or an entry of the tuple or list v, is a tensor (eager
    mode: the joint histograms' range and kappa as 0-d tensors)."""
    if isinstance(v, (list, tuple)):
        return any(isinstance(u, Tensor) for u in v)
    return isinstance(v, Tensor)


def _learnable_rows(coords: List[Tensor], bins: List[int], mins: list, maxs: list, kappas: list,
                    kernel: str, conserve_mass: bool) -> Tensor:
    """The joint params (one _params_row per axis) where some min, max or
    kappa is a 0-d tensor, which keeps its autograd history. Eager mode only."""
    if kernel == "hard":
        raise ValueError("softhist: the hard kernel has no gradient with respect to the range "
                         "or kappa; give them as numbers, or use a smooth kernel")
    return torch.stack([_params_row(c, b, lo, hi, k, kernel, conserve_mass)
                        for c, b, lo, hi, k in zip(coords, bins, mins, maxs, kappas)])


def histc(
    input: Tensor,
    bins: int = 100,
    min: Union[float, Tensor] = 0.0,
    max: Union[float, Tensor] = 0.0,
    kappa: Union[None, float, Tensor] = None,
    kernel: str = "logistic",
    weight: Optional[Tensor] = None,
    dim: Optional[int] = None,
    density: bool = False,
    straight_through: bool = False,
    conserve_mass: bool = False,
) -> Tensor:
    """Differentiable torch.histc.

    Each sample spreads over the bins by a smoothing kernel of scale 1/kappa,
    and a bin receives the kernel mass that falls inside it. With the default
    logistic kernel, for bins with edges e_j = min + j * (max - min) / bins:

        out[b] = sum_i w_i * (sigmoid(kappa * (x_i - e_b)) - sigmoid(kappa * (x_i - e_(b+1))))

    Samples well inside [min, max] add exactly w_i in total, and kappa -> inf
    gives torch.histc. Gradients flow to input and weight (first and second
    order), and to min, max and kappa when they are tensors. Only the bins a
    sample's kernel reaches are touched: memory is O(N + bins), with no
    N x bins tensor. (The arguments after kappa are meant as keywords; they
    are not keyword-only because TorchScript can't compile that.)

    Args:
        input: samples, float16, bfloat16, float32 or float64. NaN and +-inf
            samples add nothing and get a zero gradient.
        bins: number of equal-width bins, at least 1.
        min, max: the range. If equal (the default, 0 and 0), the range of the
            finite samples, as in torch.histc; that range is a constant for
            autograd. 0-d tensors (e.g. Parameters) get gradients of first
            and second order; their values are read on the host (a sync on CUDA).
        kappa: inverse kernel scale, a number or a 0-d tensor that gets
            gradients, in 1/units of input ("logistic": the
            sigmoid slope; "gaussian": 1/standard deviation; "triangular"
            and "box": 1/half-width; "bspline": 2/support half-width). None sets it from
            the bin width, so a kernel spreads over about half a bin whatever
            the data's range (README, "Choosing kappa"); with a tensor range
            it follows the range's gradient too.
        kernel: "logistic", "gaussian", "triangular", "bspline", "box"
            (softhist_ext.KERNELS), or "hard" (exact counts, differentiable in
            weight only).
        weight: per-sample weights, input's shape and dtype.
        dim: one histogram per slice along dim: the result has input's shape
            with dim replaced by bins. None flattens, as torch.histc.
        density: normalise each histogram to integrate to 1 over [min, max],
            as torch.histogram(density=True).
        straight_through: exact counts (torch.histc's) in the forward pass,
            the kernel's gradient in the backward pass.
        conserve_mass: open outer bins. A sample inside [min, max] keeps its
            whole mass: the kernel mass beyond min goes to the first bin, beyond
            max to the last. Samples outside [min, max] add nothing, as in
            torch.histc, so the total equals torch.histc's for every kernel.
            False (the default): a sample near an end loses the kernel mass
            beyond it, and one just outside adds the mass that reaches in.

    Returns:
        (bins,), or input's shape with dim replaced by bins; input's dtype and
        device.

    Examples:
        >>> x = torch.tensor([0.1, 0.5, 0.52, 0.9], requires_grad=True)
        >>> h = softhist_ext.histc(x, bins=4, min=0.0, max=1.0)
        >>> h.sum()  # samples near the ends lose the mass beyond them
        tensor(3.6627, grad_fn=<SumBackward0>)
        >>> softhist_ext.histc(x, 4, 0.0, 1.0, conserve_mass=True).sum()
        tensor(4., grad_fn=<SumBackward0>)
        >>> h[1].backward()  # d(count in [0.25, 0.5)) / dx
        >>> images = torch.rand(8, 3, 32, 32)  # one histogram per image and channel
        >>> softhist_ext.histc(images.flatten(2), 16, 0.0, 1.0, dim=-1).shape
        torch.Size([8, 3, 16])
    """
    if not torch.jit.is_scripting():
        _checks.arguments(
            "histc", input=(input, "Tensor"), bins=(bins, "int"), min=(min, "number or tensor"),
            max=(max, "number or tensor"), kappa=(kappa, "number or tensor?"), kernel=(kernel, "str"),
            weight=(weight, "Tensor?"), dim=(dim, "int?"), density=(density, "bool"),
            straight_through=(straight_through, "bool"), conserve_mass=(conserve_mass, "bool"),
        )
        if dim is not None:
            _checks.dim_in_range("histc", dim, input.dim())
    if weight is not None and weight.shape != input.shape:
        raise ValueError(
            f"softhist: weight must have the input's shape {list(input.shape)}, "
            f"got {list(weight.shape)}"
        )
    if dim is None:
        x = input.reshape(-1)
        w = weight.reshape(-1) if weight is not None else None
    else:
        x = input.movedim(dim, -1)
        w = weight.movedim(dim, -1) if weight is not None else None
    params = _params_row(x, bins, min, max, kappa, kernel, conserve_mass)[None]
    out = _histogram([x], w, params, [bins], kernel, density)
    if straight_through:
        # The hard count bins in the samples' type: params checks that the
        # range fits it for "hard" only, and the scatter does so for rows on
        # the host; on a device, params' smooth row is not read there.
        check = x.device.type != "cpu"
        if not torch.jit.is_scripting():
            check = check and not torch.compiler.is_compiling()
        if check:
            lo, hi = _number(min), _number(max)
            if lo != hi:
                torch.ops.softhist.params(x.reshape(-1)[:0], bins, lo, hi, None, "hard", conserve_mass)
        w_hard = w.detach() if w is not None else None
        hard = _histogram([x.detach()], w_hard, params.detach(), [bins], "hard", density)
        # (nan_to_num: a float16 bin past 65504 stays hard's inf, not inf - inf)
        out = hard + (out - out.detach()).nan_to_num(0.0, 0.0, 0.0)
    if density:
        out = _even_density(out, params, [bins], x.dtype)
    return out if dim is None else out.movedim(-1, dim)


def bincount(
    input: Tensor,
    weights: Optional[Tensor] = None,
    minlength: int = 0,
    kappa: Union[None, float, Tensor] = None,
    kernel: str = "logistic",
) -> Tensor:
    """Differentiable torch.bincount.

    Integer input gives torch.bincount's exact counts, differentiable with
    respect to floating weights. Floating input gives soft counts at the
    integers 0, 1, ...: histc with unit bins centred on them (kernel `kernel`
    of inverse scale `kappa`), differentiable with respect to input and
    weights (and kappa, given as a 0-d tensor, as histc's). The length is
    max(minlength, int(max(input)) + 1) (for floating input, the largest
    finite sample truncated: one at 2.6 adds to bin 2 and loses what its
    kernel puts beyond 2.5).

    Examples:
        >>> labels = torch.tensor([0, 2, 2, 3])
        >>> scores = torch.tensor([0.5, 1.0, 2.0, 0.25], requires_grad=True)
        >>> softhist_ext.bincount(labels, scores)
        tensor([0.5000, 0.0000, 3.0000, 0.2500], grad_fn=<ToCopyBackward0>)
        >>> positions = torch.tensor([0.0, 1.9, 2.1], requires_grad=True)
        >>> softhist_ext.bincount(positions, kernel="triangular").detach()
        tensor([0.7500, 0.3850, 1.4800])
    """
    if not torch.jit.is_scripting():
        _checks.arguments(
            "bincount", input=(input, "Tensor"), weights=(weights, "Tensor?"),
            minlength=(minlength, "int"), kappa=(kappa, "number?"), kernel=(kernel, "str"),
        )
    if input.dim() != 1:
        raise ValueError(f"softhist: bincount's input must be 1-d, got {input.dim()} dimensions")
    if weights is not None and weights.shape != input.shape:
        raise ValueError(
            f"softhist: bincount's weights must have the input's shape {list(input.shape)}, "
            f"got {list(weights.shape)}"
        )
    if minlength < 0:
        raise ValueError(f"softhist: bincount's minlength must be >= 0, got {minlength}")
    if input.is_complex() or input.dtype == torch.bool:
        raise ValueError(
            f"softhist: bincount's input must be integer (exact counts) or floating "
            f"(soft counts), got {input.dtype}"
        )
    if input.is_floating_point() and weights is not None and weights.dtype != input.dtype:
        raise ValueError(
            f"softhist: bincount's weights must have the floating input's dtype {input.dtype}, "
            f"got {weights.dtype}; convert them with weights.to(input.dtype)"
        )
    if not input.is_floating_point():
        if kappa is not None:
            raise ValueError("softhist: bincount of integer input counts exactly, and takes no "
                             "kappa (it sets the kernel of floating input)")
        if not torch.jit.is_scripting():
            if not torch.compiler.is_compiling() and not torch.jit.is_tracing():  # (a list of str)
                kernels = torch.ops.softhist.kernels()
                if kernel != "hard" and kernel not in kernels:
                    raise ValueError(f"softhist: bincount's kernel must be one of {kernels} or "
                                     f"'hard', got '{kernel}'")
        if weights is None or not weights.is_floating_point():
            return torch.bincount(input, weights, minlength)
        compiling = False
        if not torch.jit.is_scripting():
            compiling = torch.compiler.is_compiling()
        if compiling:  # (a length from the data, torch's checks too: no int for the op)
            length = torch.bincount(input, None, minlength).shape[0]
        else:  # (as torch.bincount takes it, without its throwaway int64 counts)
            length = minlength
            if input.numel() > 0:
                if bool(input.min() < 0):
                    raise ValueError(f"softhist: bincount's input must be non-negative, as "
                                     f"torch.bincount's, got {int(input.min())}")
                length = max(minlength, int(input.max()) + 1)
        # torch.bincount's dtype: the weights', float64 for 16-bit ones.
        out_dtype = weights.dtype
        if out_dtype == torch.float16 or out_dtype == torch.bfloat16:
            out_dtype = torch.float64
        if compiling or input.is_cpu:  # (summed in order on the CPU; CUDA's scatter is reproducible)
            counts = torch.zeros(length, dtype=torch.float64, device=weights.device)
            return counts.index_add_(0, input.long(), weights.double()).to(out_dtype)
        if length == 0:  # empty input: no bins, in weights' graph
            return weights[:0].to(out_dtype)
        # float64 positions are exact for integers below 2^53.
        positions = input.double()
        params = torch.ops.softhist.params(positions, length, -0.5, length - 0.5, None, "hard")
        counts = torch.ops.softhist.scatter(
            [positions], weights.double(), params[None], [length], [0], "hard"
        )
        return counts.to(out_dtype)
    finite = input.detach()[torch.isfinite(input.detach())]
    top = 0
    if finite.numel() > 0:
        largest = float(finite.max().item())
        if largest >= 2147483647.0:
            raise ValueError(
                f"softhist: bincount's input reaches {largest}, which needs more than "
                "2^31 - 1 bins"
            )
        top = int(largest) + 1
    length = minlength if minlength > top else top
    if length == 0:  # no bins, in the graph of input (and weights)
        return input[:0] if weights is None else input[:0] * weights[:0]
    return histc(input, length, -0.5, length - 0.5, kappa, kernel=kernel, weight=weights)


def _pair_int(v: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    if isinstance(v, int):
        return v, v
    return v[0], v[1]


def _pair_float(v: Union[float, Tuple[float, float]]) -> Tuple[float, float]:
    if isinstance(v, (int, float)):
        return float(v), float(v)
    return float(v[0]), float(v[1])


def _pair_kappa(
    v: Union[None, float, Tuple[Optional[float], Optional[float]]],
) -> Tuple[Optional[float], Optional[float]]:
    if v is None:
        return None, None
    if isinstance(v, (int, float)):
        return float(v), float(v)
    return v[0], v[1]


def histc2d(
    x: Tensor,
    y: Tensor,
    bins: Union[int, Tuple[int, int]] = 32,
    min: Union[float, Tuple[float, float]] = 0.0,
    max: Union[float, Tuple[float, float]] = 0.0,
    kappa: Union[None, float, Tuple[Optional[float], Optional[float]]] = None,
    kernel: str = "logistic",
    weight: Optional[Tensor] = None,
    dim: Optional[int] = None,
    conserve_mass: bool = False,
) -> Tensor:
    """Differentiable joint histogram of the pairs (x_i, y_i).

    Each pair splats the product of its two kernel windows into the bins:

        out[a, b] = sum_i w_i * mass_x(x_i, a) * mass_y(y_i, b)

    where mass(x, a) is the kernel mass of x in bin a, as in histc. Fused (no
    N x bins tensor), with gradients with respect to x, y and weight. With
    conserve_mass=True its marginals are histc(x, ...) and histc(y, ...) (for
    pairs whose other coordinate is inside its range; without it, pairs near
    the other axis's ends lose the kernel mass beyond them).

    Args:
        x, y: paired samples of the same shape and dtype.
        bins, min, max, kappa: as in histc, each a number for both axes or an
            (x, y) pair. min == max takes that axis's range from its data.
            min, max and kappa may be 0-d tensors (or pairs holding them),
            which get gradients, as histc's (not in TorchScript, whose
            signature takes numbers).
        kernel, weight: as in histc.
        dim: one joint histogram per slice along dim.
        conserve_mass: open outer bins on both axes, as in histc: a pair
            inside both ranges keeps its whole mass; the others add nothing.

    Returns:
        (bins_x, bins_y), or with dim: x's shape without dim, followed by
        (bins_x, bins_y).

    Examples:
        >>> x = torch.rand(10_000)
        >>> y = (x + 0.1 * torch.randn(10_000)).clamp(0, 1)
        >>> joint = softhist_ext.histc2d(x, y, bins=8, min=0.0, max=1.0)
        >>> joint.shape
        torch.Size([8, 8])
        >>> batch = softhist_ext.histc2d(x.view(4, -1), y.view(4, -1), (8, 6), dim=-1)
        >>> batch.shape
        torch.Size([4, 8, 6])
    """
    if not torch.jit.is_scripting():
        _checks.arguments(
            "histc2d", x=(x, "Tensor"), y=(y, "Tensor"), bins=(bins, "int pair"),
            min=(min, "number pair"), max=(max, "number pair"), kappa=(kappa, "number? pair"),
            kernel=(kernel, "str"), weight=(weight, "Tensor?"), dim=(dim, "int?"),
            conserve_mass=(conserve_mass, "bool"),
        )
        if dim is not None:
            _checks.dim_in_range("histc2d", dim, x.dim())
        bins, min, max, kappa = _plain(bins), _plain(min), _plain(max), _plain(kappa)
    if y.shape != x.shape or y.dtype != x.dtype or y.device != x.device:
        raise ValueError(
            f"softhist: x and y must have the same shape, dtype and device (they pair up sample "
            f"by sample), got {list(x.shape)}, {x.dtype}, {x.device} and {list(y.shape)}, "
            f"{y.dtype}, {y.device}"
        )
    if weight is not None and weight.shape != x.shape:
        raise ValueError(f"softhist: weight must have x's shape {list(x.shape)}, got {list(weight.shape)}")
    bins_x, bins_y = _pair_int(bins)
    if dim is None:
        xs, ys = x.reshape(-1), y.reshape(-1)
        w = weight.reshape(-1) if weight is not None else None
    else:
        xs, ys = x.movedim(dim, -1), y.movedim(dim, -1)
        w = weight.movedim(dim, -1) if weight is not None else None
    if not torch.jit.is_scripting():
        if _holds_tensor(min) or _holds_tensor(max) or _holds_tensor(kappa):
            both = [min, max, kappa]  # each a pair, tensors kept
            pairs = [list(v) if isinstance(v, (list, tuple)) else [v, v] for v in both]
            params = _learnable_rows([xs, ys], [bins_x, bins_y], pairs[0], pairs[1], pairs[2],
                                     kernel, conserve_mass)
            return torch.ops.softhist.scatter([xs, ys], w, params, [bins_x, bins_y], [0, 0], kernel)
    min_x, min_y = _pair_float(min)
    max_x, max_y = _pair_float(max)
    kappa_x, kappa_y = _pair_kappa(kappa)
    params = torch.stack([
        torch.ops.softhist.params(xs, bins_x, min_x, max_x, kappa_x, kernel, conserve_mass),
        torch.ops.softhist.params(ys, bins_y, min_y, max_y, kappa_y, kernel, conserve_mass),
    ])
    return torch.ops.softhist.scatter([xs, ys], w, params, [bins_x, bins_y], [0, 0], kernel)


class HistogramddResult(NamedTuple):
    """histogramdd's result, as torch.histogramdd's: the histogram and, per
    axis, its bin edges."""

    hist: Tensor
    bin_edges: List[Tensor]


def _per_axis_ints(v: Union[int, List[int]], axes: int, name: str) -> List[int]:
    if isinstance(v, int):
        return [v] * axes
    if len(v) != axes:
        raise ValueError(f"softhist: histogramdd's {name} must be an int or a list of {axes} ints (one per axis), got {len(v)}")
    return [int(b) for b in v]


def _per_axis_kappa(v: Union[None, float, List[float], List[Optional[float]]],
                    axes: int) -> List[Optional[float]]:
    out: List[Optional[float]] = []
    if v is None:
        for _ in range(axes):
            out.append(None)
        return out
    if isinstance(v, (int, float)):
        for _ in range(axes):
            out.append(float(v))
        return out
    if torch.jit.is_scripting():  # (a list literal of numbers is a List[float] there)
        if torch.jit.isinstance(v, List[float]):
            for k in v:
                out.append(k)
        elif torch.jit.isinstance(v, List[Optional[float]]):
            for k in v:
                out.append(k)
    else:
        out = [None if k is None else float(k) for k in v]
    if len(out) != axes:
        raise ValueError(f"softhist: histogramdd's kappa must be a number, None or a list of {axes} (one per axis), got {len(out)}")
    return out


def _last_dims(ndim: int, count: int) -> List[int]:
    return list(range(ndim - count, ndim))


def _data_range(v: Tensor) -> Tuple[float, float]:
    """The range of v's finite values as torch.histogramdd takes it (a point
    widened by 0.5 on each side; [0, 1] without finite values, as numpy)."""
    d = v.detach()
    finite = torch.isfinite(d)
    lo = float(torch.where(finite, d, torch.full_like(d, float("inf"))).min().item()) if d.numel() > 0 else float("inf")
    hi = float(torch.where(finite, d, torch.full_like(d, float("-inf"))).max().item()) if d.numel() > 0 else float("-inf")
    if lo > hi:
        return 0.0, 1.0
    if lo == hi:
        return lo - 0.5, hi + 0.5
    return lo, hi


def _widened_point(lo: Union[float, Tensor], hi: Union[float, Tensor]) -> Tuple[Union[float, Tensor], Union[float, Tensor]]:
    """A range given as numbers that is a point, widened by 0.5 on each side
    as torch.histogram widens it (histc would take the data's range); tensors
    (a learned range) are kept, for the caller to check."""
    if not _is_tensor(lo) and not _is_tensor(hi) and _number(lo) == _number(hi):
        return _number(lo) - 0.5, _number(hi) + 0.5
    return lo, hi


def _bin_positions(v: Tensor, edges: Tensor) -> Tensor:
    """Each value's bin plus 0.5 (float64), found among `edges` as
    torch.histogramdd finds it: bin b holds [edges[b], edges[b + 1]), the last
    bin its right edge too; NaN outside. It carries v's autograd history (with
    zero value), so that asking for v's gradient gives the hard kernel's error."""
    bins = edges.numel() - 1
    b = torch.bucketize(v.detach().contiguous(), edges.contiguous(), right=True) - 1
    b = torch.clamp(b, 0, bins - 1)  # the right edge itself, into the last bin
    inside = (v.detach() >= edges[0]) & (v.detach() <= edges[-1])  # False for NaN
    centre = b.double() + 0.5
    positions = torch.where(inside, centre, torch.full_like(centre, float("nan")))
    return positions + (v - v.detach()).double() if v.requires_grad else positions


def _hard_histogram(coords: List[Tensor], edges: List[Tensor], w: Optional[Tensor],
                    bins: List[int]) -> Tensor:
    """Exact counts of the samples binned by their edges (_bin_positions), summed
    in float64 by the hard kernel; a float64 histogram."""
    positions: List[Tensor] = []
    rows: List[Tensor] = []
    a = 0
    while a < len(coords):
        positions.append(_bin_positions(coords[a], edges[a]))
        rows.append(torch.ops.softhist.params(positions[a], bins[a], 0.0, float(bins[a]), None,
                                              "hard", False))
        a += 1
    weight = w.double() if w is not None else None
    return torch.ops.softhist.scatter(positions, weight, torch.stack(rows), bins, [0] * len(bins), "hard")


def _axis_coords(x: Tensor, axes: int) -> List[Tensor]:
    """Each axis's coordinates of x (..., N, axes), as views; one axis's is
    x without its last dim, whose gradient is then x's with no copy."""
    if axes == 1:
        return [x.squeeze(-1)]
    return list(x.movedim(-1, 0).unbind(0))


def _bins_dd(bins: Union[int, List[int], List[Tensor]], axes: int) -> Tuple[List[Tensor], List[int]]:
    """histogramdd's bins: the edge tensors given (none for counts), and the
    bins per axis."""
    none: List[Tensor] = []
    if torch.jit.is_scripting():
        # (mypy does not narrow by torch.jit.isinstance)
        if torch.jit.isinstance(bins, List[Tensor]):
            given: List[Tensor] = bins  # type: ignore[assignment]
            return given, [e.numel() - 1 for e in given]
        if torch.jit.isinstance(bins, List[int]):
            return none, _per_axis_ints(bins, axes, "bins")  # type: ignore[arg-type]
        assert isinstance(bins, int)
        return none, _per_axis_ints(bins, axes, "bins")
    else:  # (torch.jit.isinstance is not traceable by torch.compile)
        if isinstance(bins, list) and len(bins) > 0 and isinstance(bins[0], Tensor):
            edges = cast(List[Tensor], bins)
            return edges, [e.numel() - 1 for e in edges]
        return none, _per_axis_ints(cast(Union[int, List[int]], bins), axes, "bins")


def _explicit_edges_dd(edges: List[Tensor], x: Tensor, axes: int, range: Optional[List[float]],
                       kernel: str) -> None:
    """Checks histogramdd's bins given as edges, one tensor per axis."""
    if len(edges) != axes:
        raise ValueError(f"softhist: histogramdd's bins, given as edges, must be a list of {axes} "
                         f"tensors (one per axis), got {len(edges)}")
    if range is not None:
        raise ValueError("softhist: histogramdd's range must be None when bins are given as edges "
                         "(the edges set the range), as in torch.histogramdd")
    a = 0
    while a < axes:  # (not a for loop: see histogramdd)
        _check_edges(edges[a], x, "histogramdd")
        a += 1


def _density(hist: Tensor, widths: List[Tensor], dtype: torch.dtype) -> Tensor:
    """hist divided by its sum over its last len(widths) dimensions and by
    its bins' volumes, as torch's density=True, in dtype (the samples':
    hist may be wider, _histogram's). widths: each axis's, 0-d
    (even bins: folded into the sum's divisor) or per bin (explicit edges:
    divided by in turn, so that a volume past the dtype's range still leaves
    empty bins 0). In float64 (float32 bins of 4e-23 have volumes below
    float32's range; a float16 sum passes 65504 long before its bins do), by
    sums whose bits do not depend on the thread count, gradients included."""
    axes = len(widths)
    h = hist.to(torch.float64)
    d = _sums.total(h, axes).reshape(list(h.shape[:h.dim() - axes]) + [1] * axes)
    if widths[0].dim() == 0:
        a = 0
        while a < axes:
            d = d * widths[a].to(torch.float64)
            a += 1
        return _sums.divided(h, d, axes).to(dtype)
    h = _sums.divided(h, d, axes)
    a = 0
    while a < axes:
        shape = [-1] + [1] * (axes - 1 - a)
        h = h / widths[a].to(torch.float64).reshape(shape)
        a += 1
    return h.to(dtype)


def _edges_density(hist: Tensor, edges: List[Tensor]) -> Tensor:
    """_density by the widths of the bins between edges, as
    torch.histogramdd's density, in the edges' dtype."""
    return _density(hist, [e.diff() for e in edges], edges[0].dtype)


def _even_density(hist: Tensor, params: Tensor, bins: List[int], dtype: torch.dtype) -> Tensor:
    """_density of even bins: their nominal widths, from params' float64
    ranges (not from edges rounded to the input's dtype)."""
    widths = (params[:, 1] - params[:, 0]) / torch.tensor(bins, dtype=torch.float64,
                                                          device=params.device)
    return _density(hist, list(widths.unbind(0)), dtype)


def _linspace(lo: float, hi: float, steps: int, like: Tensor) -> Tensor:
    """torch.linspace in like's dtype and on its device, as torch.histogramdd
    makes its edges; 16-bit types (which torch's lacks) through float32, where
    hi - lo may pass float16's 65504 while both ends lie within it."""
    if like.dtype == torch.float16 or like.dtype == torch.bfloat16:
        return torch.linspace(lo, hi, steps, dtype=torch.float32, device=like.device).to(like.dtype)
    return torch.linspace(lo, hi, steps, dtype=like.dtype, device=like.device)


def _histogram(coords: List[Tensor], w: Optional[Tensor], params: Tensor, bins: List[int],
               kernel: str, density: bool) -> Tensor:
    """torch.ops.softhist.scatter's histogram, in float32 for a density of
    float16 samples: float16's bins pass 65504 (and lose integers past 2048)
    long before the density does, so those samples are scattered in rows of
    2048 (padded with NaN, which adds nothing), each row's bins exact in
    float16 (unweighted; weights whose 2048-sample sums pass 65504 still
    make inf), summed in float32."""
    x = coords[0]
    if not density or x.dtype != torch.float16:
        return torch.ops.softhist.scatter(coords, w, params, bins, [0] * len(bins), kernel)
    row = 2048
    lead = list(x.shape[:-1])
    pad = (-x.shape[-1]) % row
    shape = lead + [(x.shape[-1] + pad) // row, row]  # (not -1: lead may hold a 0)
    rows = [torch.nn.functional.pad(c, [0, pad], value=float("nan")).reshape(shape) for c in coords]
    w_rows: Optional[Tensor] = None
    if w is not None:
        w_rows = torch.nn.functional.pad(w, [0, pad]).reshape(shape)
    h = torch.ops.softhist.scatter(rows, w_rows, params, bins, [0] * len(bins), kernel)
    # (the rows' dimension last, for a sum whose bits do not depend on the thread count)
    return _sums.total(h.to(torch.float32).movedim(len(lead), -1), 1)


def _check_hard_edges(edges: List[Tensor], fn: str) -> None:
    """The hard kernel's explicit edges get no gradient: edges that would
    (grad mode on, requires_grad) are an error rather than a graph that
    stops there without a word."""
    if torch.is_grad_enabled():
        for e in edges:
            if e.requires_grad:
                raise ValueError(f"softhist: {fn}'s hard kernel has no gradient with respect to its "
                                 "edges, which require grad; pass them detached (edges.detach()), "
                                 "or use a smooth kernel")


def _check_floating(input: Tensor, fn: str) -> None:
    """histogram's and histogramdd's samples are floating point, as torch's:
    their hard kernel bins them itself, and counts in an integer dtype would
    truncate weights."""
    if not input.is_floating_point():
        raise ValueError(f"softhist: {fn} needs floating-point input (float16, bfloat16, float32 "
                         "or float64), got an integer, bool or complex tensor; convert it with "
                         "input.float()")


def _check_weight_dtype(weight: Optional[Tensor], input: Tensor, fn: str) -> None:
    """Weights in input's dtype, as torch.histogram's and every kernel's
    (the hard one sums them in float64 and would take any)."""
    if weight is not None and weight.dtype != input.dtype:
        raise ValueError(f"softhist: {fn}'s weight must have input's dtype {input.dtype}, got "
                         f"{weight.dtype}; convert it with weight.to(input.dtype)")


def _learnable_histogramdd(x: Tensor, w: Optional[Tensor], given_edges: List[Tensor],
                           bins: List[int], range_: Optional[Sequence[Union[float, Tensor]]],
                           kappa: Any, kernel: str,
                           density: bool, conserve_mass: bool) -> "HistogramddResult":
    """histogramdd where the range or kappa holds 0-d tensors, which get
    gradients (eager mode; x is (..., N, D)): each axis's row as histc's
    (_params_row) or over its edges (_explicit_params), and returned edges
    that carry the range's autograd history."""
    axes = len(bins)
    kappas = list(kappa) if isinstance(kappa, (list, tuple)) else [kappa] * axes
    if len(kappas) != axes:
        raise ValueError(f"softhist: histogramdd's kappa must be a number, None or a list of "
                         f"{axes} (one per axis), got {len(kappas)}")
    coords = _axis_coords(x, axes)
    if len(given_edges) > 0:
        if kernel == "hard":
            raise ValueError("softhist: the hard kernel takes no kappa")
        params = _explicit_params_dd(coords, given_edges, kappas, kernel, conserve_mass)
        edges = given_edges
    else:
        ranges: List[Tuple[Union[float, Tensor], Union[float, Tensor]]]
        if range_ is None:
            ranges = [_data_range(c) for c in coords]
        elif len(range_) != 2 * axes:
            raise ValueError(f"softhist: histogramdd's range must list min and max for each of "
                             f"the {axes} axes ({2 * axes} numbers), got {len(range_)}")
        else:
            ranges = [_widened_point(range_[2 * a], range_[2 * a + 1]) for a in builtins.range(axes)]
        for a, (lo, hi) in enumerate(ranges):
            if not torch.compiler.is_compiling() and not _number(lo) < _number(hi):
                raise ValueError(f"softhist: histogramdd's range for axis {a} must have min < max, "
                                 f"got [{_number(lo)}, {_number(hi)}]")
        params = _learnable_rows(coords, bins, [r[0] for r in ranges], [r[1] for r in ranges],
                                 kappas, kernel, conserve_mass)
        edges = [(params[a, 0] + (params[a, 1] - params[a, 0])
                  * torch.linspace(0.0, 1.0, b + 1, dtype=torch.float64, device=x.device)).to(x.dtype)
                 for a, b in enumerate(bins)]
    hist = _histogram(coords, w, params, bins, kernel, density)
    if density and len(given_edges) > 0:
        hist = _edges_density(hist, edges)
    elif density:
        hist = _even_density(hist, params, bins, x.dtype)
    return HistogramddResult(hist, edges)


def _explicit_params_dd(coords: List[Tensor], edges: List[Tensor], kappas: List[Optional[float]],
                        kernel: str, conserve_mass: bool) -> Tensor:
    """The params of D axes over explicit edges: each axis's row as
    _explicit_params makes it, padded with its last edge to the longest."""
    rows: List[Tensor] = []
    a = 0
    while a < len(edges):
        rows.append(_explicit_params(coords[a], edges[a], kappas[a], kernel, conserve_mass)[0])
        a += 1
    width = max([r.numel() for r in rows])
    padded: List[Tensor] = []
    for r in rows:
        padded.append(torch.cat([r, r[-1:].expand(width - r.numel())]))
    return torch.stack(padded)


def histogramdd(
    input: Tensor,
    bins: Union[int, List[int], List[Tensor]] = 10,
    range: Optional[List[float]] = None,
    weight: Optional[Tensor] = None,
    density: bool = False,
    kappa: Union[None, float, List[float], List[Optional[float]]] = None,
    kernel: str = "logistic",
    dim: Optional[int] = None,
    conserve_mass: bool = False,
) -> HistogramddResult:
    """Differentiable torch.histogramdd, for D = 1, 2 or 3 coordinates.

    The joint histogram of the samples' D coordinates (the last dimension of
    input): each sample spreads over the bins by the product of one smoothing
    kernel per axis,

        hist[b_1, ..., b_D] = sum_i w_i * mass_1(x_i1, b_1) * ... * mass_D(x_iD, b_D)

    where mass_a(x, b) is the kernel mass of x in axis a's bin b, as in histc.
    Fused (memory O(N + bins), no N x bins tensor); gradients of first and
    second order flow to input and weight. kernel="hard" equals
    torch.histogramdd: it bins by the returned edges, as torch does, so a
    sample on an edge lands where torch puts it. (The arguments after density
    are meant as keywords; they are not keyword-only because TorchScript can't
    compile that.)

    Args:
        input: samples (N, D), D <= 3, float16/bfloat16/float32/float64; leading
            dimensions beyond one are flattened, as torch.histogramdd does,
            unless dim is given. NaN and +-inf coordinates drop their sample.
        bins: bins per axis: an int for every axis, a list of D ints, or a
            list of D 1-d tensors of edges, each strictly increasing with any
            spacing, as torch.histogramdd takes them. With edges and a smooth
            kernel, kappa=None is chosen per axis from its mean bin width, as
            histogram does; edges that require grad get gradients (first
            and second order; learnable bins on every axis).
        range: [min_1, max_1, ..., min_D, max_D], as torch.histogramdd's.
            None takes each axis's range from its finite values (a point
            widened by 0.5 on each side), a constant for autograd; that needs
            the values on the host (a device sync on CUDA, a graph break under
            torch.compile: fullgraph=True needs a range). Entries may be
            0-d tensors, which get gradients (the returned edges follow
            them; not in TorchScript, whose signature takes numbers).
        weight: per-sample weights, input.shape[:-1].
        density: normalise to integrate to 1 over the range, as
            torch.histogramdd(density=True).
        kappa: inverse kernel scale per axis (a number for all, or a list of
            D numbers or None), in 1/units of that axis; None sets it from the
            bin width as histc does. Numbers may be 0-d tensors, which get
            gradients (not in TorchScript).
        kernel: as in histc: "logistic", "gaussian", "triangular", "bspline",
            "box" (softhist_ext.KERNELS) or "hard".
        dim: the dimension of input that holds the samples, not the last
            (the coordinates); the others before the last give one histogram
            each (batched rows): input (B, N, D) with dim=1 (or -2) gives B
            histograms, (B, *bins).
        conserve_mass: open outer bins on every axis, as in histc.

    Returns:
        (hist, bin_edges): hist of shape bins (or the batch dimensions, then
        bins), input's dtype; bin_edges, D tensors of bins[a] + 1 edges.

    Examples:
        >>> rgb = torch.rand(64 * 64, 3, requires_grad=True)  # the pixels of an RGB image
        >>> hist, edges = softhist_ext.histogramdd(rgb, bins=8, range=[0.0, 1.0] * 3)
        >>> hist.shape, len(edges)
        (torch.Size([8, 8, 8]), 3)
        >>> hist.sum().backward()  # gradients with respect to every pixel
        >>> batch = torch.rand(4, 1000, 2)  # four sets of 2-d points
        >>> softhist_ext.histogramdd(batch, [5, 6], [0.0, 1.0, 0.0, 1.0], dim=1).hist.shape
        torch.Size([4, 5, 6])
    """
    if not torch.jit.is_scripting():
        _checks.arguments(
            "histogramdd", input=(input, "Tensor"), bins=(bins, "int, int list or edges list"),
            range=(range, "number list?"), weight=(weight, "Tensor?"), density=(density, "bool"),
            kappa=(kappa, "number? or list"), kernel=(kernel, "str"), dim=(dim, "int?"),
            conserve_mass=(conserve_mass, "bool"),
        )
        bins, range, kappa = _plain(bins), _plain(range), _plain(kappa)
        if isinstance(bins, tuple):
            bins = list(bins)
    _check_floating(input, "histogramdd")
    if input.dim() < 2 or input.shape[-1] < 1 or input.shape[-1] > 3:
        raise ValueError(
            f"softhist: histogramdd's input must be (N, D) with D = 1, 2 or 3 coordinates per "
            f"sample, got shape {list(input.shape)}"
        )
    axes = input.shape[-1]
    lead = list(input.shape[:-1])
    if weight is not None and list(weight.shape) != lead:
        raise ValueError(f"softhist: histogramdd's weight must have shape input.shape[:-1] = {lead}, got {list(weight.shape)}")
    _check_weight_dtype(weight, input, "histogramdd")
    if dim is None:
        x = input.reshape(-1, axes)
        w = weight.reshape(-1) if weight is not None else None
    else:
        d = dim + input.dim() if dim < 0 else dim
        if not 0 <= d < input.dim() - 1:
            raise IndexError(f"softhist: histogramdd's dim must be one of input's sample "
                             f"dimensions, in [0, {input.dim() - 2}] or [{-input.dim()}, -2] for a "
                             f"{input.dim()}-d input (the last holds each sample's coordinates), "
                             f"got {dim}")
        x = input.movedim(d, -2)
        w = weight.movedim(d, -1) if weight is not None else None
    given_edges, bins_per_axis = _bins_dd(bins, axes)
    if len(given_edges) > 0:
        _explicit_edges_dd(given_edges, x, axes, range, kernel)
    if not torch.jit.is_scripting():
        if _holds_tensor(range) or _holds_tensor(kappa):
            return _learnable_histogramdd(x, w, given_edges, bins_per_axis, range, kappa, kernel,
                                          density, conserve_mass)
    kappas = _per_axis_kappa(kappa, axes)
    if range is not None and len(range) != 2 * axes:
        raise ValueError(f"softhist: histogramdd's range must list min and max for each of the {axes} axes ({2 * axes} numbers), got {len(range)}")
    coords = _axis_coords(x, axes)
    rows: List[Tensor] = []
    edges: List[Tensor] = []
    if len(given_edges) > 0:
        if kernel == "hard":
            a = 0
            while a < axes:  # (not a for loop: see below)
                if kappas[a] is not None:
                    raise ValueError("softhist: the hard kernel takes no kappa (it counts "
                                     "exactly); pass kappa=None, or a smooth kernel")
                a += 1
            _check_hard_edges(given_edges, "histogramdd")
            hist = _hard_histogram(coords, given_edges, w, bins_per_axis)  # (float64)
        else:
            params = _explicit_params_dd(coords, given_edges, kappas, kernel, conserve_mass)
            hist = _histogram(coords, w, params, bins_per_axis, kernel, density)
        if density:
            hist = _edges_density(hist, given_edges)
        return HistogramddResult(hist.to(input.dtype), given_edges)
    # While loops, not for loops: TorchScript's serialised code writes a for
    # loop with `range`, which the argument of that name hides.
    a = 0
    while a < axes:
        if range is not None:
            lo, hi = float(range[2 * a]), float(range[2 * a + 1])
            if not lo <= hi:
                raise ValueError(f"softhist: histogramdd's range for axis {a} must have min <= max, got [{lo}, {hi}]")
            if lo == hi:  # a point, widened by 0.5 on each side as torch.histogramdd widens it
                lo, hi = lo - 0.5, hi + 0.5
        else:
            lo, hi = _data_range(coords[a])
        rows.append(torch.ops.softhist.params(coords[a], bins_per_axis[a], lo, hi, kappas[a], kernel, conserve_mass))
        edges.append(_linspace(lo, hi, bins_per_axis[a] + 1, input))
        a += 1
    params = torch.stack(rows)
    if kernel == "hard":
        hist = _hard_histogram(coords, edges, w, bins_per_axis)  # (float64)
    else:
        hist = _histogram(coords, w, params, bins_per_axis, kernel, density)
    if density and kernel == "hard":  # counted by the returned edges: their widths, as torch's
        hist = _edges_density(hist, edges)
    elif density:  # masses of the even bins between the nominal edges: their width
        hist = _even_density(hist, params, bins_per_axis, input.dtype)
    return HistogramddResult(hist.to(input.dtype), edges)


class HistogramResult(NamedTuple):
    """histogram's result, as torch.histogram's: the histogram and its bin edges."""

    hist: Tensor
    bin_edges: Tensor


def _check_edges(edges: Tensor, input: Tensor, op: str = "histogram") -> None:
    if edges.dim() != 1 or edges.numel() < 2:
        raise ValueError(f"softhist: {op}'s bins, given as a tensor of edges, must be 1-d "
                         f"with at least 2 edges, got shape {list(edges.shape)}")
    if edges.dtype != input.dtype or edges.device != input.device:
        raise ValueError(f"softhist: {op}'s edges must have input's dtype and device "
                         f"({input.dtype}, {input.device}), got {edges.dtype} on {edges.device}: "
                         f"pass bins.to(input)")
    if torch.compiler.is_compiling() or edges.is_meta:
        return  # the op checks the values of smooth kernels' edges (a data-dependent branch here)
    d = edges.detach()
    if not bool(torch.isfinite(d).all()) or not bool((d[1:] > d[:-1]).all()):
        short = ""
        if edges.dtype == torch.float16 or edges.dtype == torch.bfloat16:
            short = (f"; {edges.dtype} holds few distinct values (a layer cast with .half(), say, "
                     "merges close edges): keep the edges in float32")
        raise ValueError(f"softhist: {op}'s edges must be finite and strictly increasing; sort them "
                         f"(torch.sort) or, if they were learned, keep them apart{short}")


def _explicit_params(x: Tensor, edges: Tensor, kappa: Union[None, float, Tensor], kernel: str,
                     conserve_mass: bool) -> Tensor:
    """The params row of explicit edges: [e_0, e_bins, kappa, open, e_0, ..., e_bins]
    in float64, edges and a tensor kappa keeping their autograd history.
    kappa=None is the default for even bins over [e_0, e_bins] (histc's), a
    function of e_0 and e_bins. (No host values, so torch.compile traces it;
    the op checks the edges and kappa.)"""
    e = edges.to(torch.float64)
    return torch.cat([_tensor_row(x, e.numel() - 1, e[0], e[-1], kappa, kernel, conserve_mass), e])[None]


def _edges_histogram(x: Tensor, w: Optional[Tensor], edges: Tensor, kappa: Union[None, float, Tensor],
                     kernel: str, density: bool) -> Tensor:
    """A smooth kernel's histogram of each row of x (..., N) over explicit
    edges (checked by _check_edges), (..., bins)."""
    params = _explicit_params(x, edges, kappa, kernel, False)  # (the params op checks kappa)
    hist = _histogram([x], w, params, [edges.numel() - 1], kernel, density)
    return _edges_density(hist, [edges]) if density else hist


def _learnable_range_histogram(x: Tensor, w: Optional[Tensor], bins: int, lo: Union[float, Tensor],
                               hi: Union[float, Tensor], kappa: Union[None, float, Tensor],
                               kernel: str, density: bool) -> HistogramResult:
    """histogram's even bins with the range or kappa as tensors: histc, and
    edges that carry the range's autograd history."""
    if kernel == "hard":
        raise ValueError("softhist: the hard kernel has no gradient with respect to the range "
                         "or kappa; give them as numbers, or use a smooth kernel")
    hist = histc(x, bins, lo, hi, kappa, kernel, w, density=density)
    frac = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64, device=x.device)
    lo_t, hi_t = _scalar_param(lo, x), _scalar_param(hi, x)
    return HistogramResult(hist, (lo_t + (hi_t - lo_t) * frac).to(x.dtype))


def histogram(
    input: Tensor,
    bins: Union[int, Tensor] = 100,
    range: Optional[Tuple[Union[float, Tensor], Union[float, Tensor]]] = None,
    weight: Optional[Tensor] = None,
    density: bool = False,
    kappa: Union[None, float, Tensor] = None,
    kernel: str = "logistic",
) -> HistogramResult:
    """Differentiable torch.histogram: the histogram of all of input's values.

    Each sample spreads over the bins by the smoothing kernel, as in histc,
    and a bin receives the kernel mass between its edges; gradients of first
    and second order flow to input and weight, and to the bins themselves when
    they are tensors: an edges tensor, or a range and kappa given as 0-d
    tensors (learnable bins). kernel="hard" equals torch.histogram: a sample
    on an edge falls in the bin that edge starts, the last bin includes its
    right edge, and values outside the edges or NaN count nowhere. (The
    arguments after bins are meant as keywords; they are not keyword-only
    because TorchScript can't compile that.)

    Args:
        input: the samples, any shape (flattened).
        bins: the number of equal bins, or a 1-d tensor of bins + 1 strictly
            increasing edges with input's dtype and device, any spacing. Edges
            that cross while they are learned raise a ValueError.
        range: (min, max) of the equal bins, numbers or 0-d tensors; None takes
            input's finite range (a point widened by 0.5 on each side), as
            torch.histogram does, a constant for autograd, read on the host
            (torch.compile(fullgraph=True) needs a range). Not with an edges
            tensor.
        weight: per-sample weights, input's shape.
        density: normalise to integrate to 1, dividing by each bin's width.
        kappa: inverse kernel scale in 1/units of input, a number or a 0-d
            tensor. None sets it from the mean bin width, (max - min) / bins,
            as histc does for even bins, so explicit even edges give the int
            bins' histogram; with learnable edges or range it follows them.
        kernel: "logistic", "gaussian", "triangular", "bspline", "box"
            (softhist_ext.KERNELS) or "hard".

    Returns:
        (hist, bin_edges): hist of bins values with input's dtype, and the
        bins + 1 edges (input's dtype).

    Examples:
        >>> x = torch.tensor([0.0, 0.5, 1.0, 1.0, 2.0])
        >>> softhist_ext.histogram(x, 4, (0.0, 2.0), kernel="hard")
        HistogramResult(hist=tensor([1., 1., 2., 1.]), bin_edges=tensor([0.0000, 0.5000, 1.0000, 1.5000, 2.0000]))
        >>> edges = torch.tensor([0.0, 0.2, 1.0, 2.0])  # uneven bins
        >>> softhist_ext.histogram(x, edges, kernel="hard").hist
        tensor([1., 1., 3.])
        >>> edges.requires_grad_()  # learnable edges
        tensor([0.0000, 0.2000, 1.0000, 2.0000], requires_grad=True)
        >>> hist, _ = softhist_ext.histogram(x, edges)  # logistic kernel
        >>> hist[1].backward()  # d(mass in the second bin) / d(edges)
    """
    if not torch.jit.is_scripting():
        _checks.arguments(
            "histogram", input=(input, "Tensor"), bins=(bins, "int or edges"),
            range=(range, "number list?"), weight=(weight, "Tensor?"), density=(density, "bool"),
            kappa=(kappa, "number or tensor?"), kernel=(kernel, "str"),
        )
        if not isinstance(bins, Tensor) or bins.dim() == 0:
            bins = int(bins)
        range, kappa = _plain(range), _plain(kappa)
    _check_floating(input, "histogram")
    if range is not None and len(range) != 2:
        raise ValueError(f"softhist: histogram's range must be (min, max), got {len(range)} numbers")
    if weight is not None and weight.shape != input.shape:
        raise ValueError(f"softhist: histogram's weight must have input's shape "
                         f"{list(input.shape)}, got {list(weight.shape)}")
    _check_weight_dtype(weight, input, "histogram")
    x = input.reshape(-1)
    w = weight.reshape(-1) if weight is not None else None
    if isinstance(bins, int):
        if range is not None and (_is_tensor(range[0]) or _is_tensor(range[1]) or _is_tensor(kappa)):
            lo, hi = _widened_point(range[0], range[1])
            return _learnable_range_histogram(x, w, bins, lo, hi, kappa, kernel, density)
        if range is None and _is_tensor(kappa):
            lo, hi = _data_range(x)
            return _learnable_range_histogram(x, w, bins, lo, hi, kappa, kernel, density)
        span: Optional[List[float]] = None
        if range is not None:
            span = [_number(range[0]), _number(range[1])]
            if not span[0] <= span[1]:
                raise ValueError(f"softhist: histogram's range must have min <= max, got "
                                 f"[{span[0]}, {span[1]}]")
        k: Optional[float] = None if kappa is None else _number(kappa)
        result = histogramdd(input.reshape(-1, 1), bins, span, w, density, k, kernel)
        return HistogramResult(result.hist, result.bin_edges[0])
    else:
        if range is not None:
            raise ValueError("softhist: histogram takes range only with bins as an int; an edges "
                             "tensor sets the range itself")
        _check_edges(bins, input)
        if kernel == "hard":
            if kappa is not None:
                raise ValueError("softhist: the hard kernel takes no kappa (it counts exactly); "
                                 "pass kappa=None, or a smooth kernel")
            _check_hard_edges([bins], "histogram")
            hist = _hard_histogram([x], [bins], w, [bins.numel() - 1])  # (float64)
            if density:
                hist = _edges_density(hist, [bins.detach()])
            return HistogramResult(hist.to(input.dtype), bins)
        return HistogramResult(_edges_histogram(x, w, bins, kappa, kernel, density), bins)
