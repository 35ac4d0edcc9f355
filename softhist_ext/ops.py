"""Typed, scriptable wrappers around ``torch.ops.softhist``."""

from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from . import _checks


def histc(
    input: Tensor,
    bins: int = 100,
    min: float = 0.0,
    max: float = 0.0,
    kappa: Optional[float] = None,
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
    order). Only the bins a sample's kernel reaches are touched: memory is
    O(N + bins), with no N x bins tensor. (The arguments after kappa are meant
    as keywords; they are not keyword-only because TorchScript can't compile
    that.)

    Args:
        input: samples, float16, bfloat16, float32 or float64. NaN and +-inf
            samples add nothing and get a zero gradient.
        bins: number of equal-width bins, at least 1.
        min, max: the range. If equal (the default, 0 and 0), the range of the
            finite samples, as in torch.histc; that range is a constant for
            autograd.
        kappa: inverse kernel scale, in 1/units of input ("logistic": the
            sigmoid slope; "gaussian": 1/standard deviation; "triangular":
            1/half-width; "bspline": 2/support half-width). None sets it from
            the bin width, so a kernel spreads over about half a bin whatever
            the data's range (README, "Choosing kappa").
        kernel: "logistic", "gaussian", "triangular", "bspline", or "hard"
            (exact counts, differentiable in weight only).
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
            "histc", input=(input, "Tensor"), bins=(bins, "int"), min=(min, "number"),
            max=(max, "number"), kappa=(kappa, "number?"), kernel=(kernel, "str"),
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
    params = torch.ops.softhist.params(x, bins, min, max, kappa, kernel, conserve_mass)[None]
    out = torch.ops.softhist.scatter([x], w, params, [bins], [0], kernel)
    if straight_through:
        w_hard = w.detach() if w is not None else None
        hard = torch.ops.softhist.scatter([x.detach()], w_hard, params, [bins], [0], "hard")
        out = hard + (out - out.detach())
    if density:
        width = ((params[0, 1] - params[0, 0]) / bins).to(out.dtype)
        out = out / (out.sum(-1, keepdim=True) * width)
    return out if dim is None else out.movedim(-1, dim)


def bincount(
    input: Tensor,
    weights: Optional[Tensor] = None,
    minlength: int = 0,
    kappa: Optional[float] = None,
    kernel: str = "logistic",
) -> Tensor:
    """Differentiable torch.bincount.

    Integer input gives torch.bincount's exact counts, differentiable with
    respect to floating weights. Floating input gives soft counts at the
    integers 0, 1, ...: histc with unit bins centred on them (kernel `kernel`
    of inverse scale `kappa`), differentiable with respect to input and
    weights. The length is max(minlength, max(input) + 1).

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
        if weights is None or not weights.is_floating_point():
            return torch.bincount(input, weights, minlength)
        length = torch.bincount(input, None, minlength).shape[0]  # torch's checks and length
        # float64 positions are exact for integers below 2^53.
        positions = input.double()
        params = torch.ops.softhist.params(positions, length, -0.5, length - 0.5, None, "hard")
        counts = torch.ops.softhist.scatter(
            [positions], weights.double(), params[None], [length], [0], "hard"
        )
        return counts.to(weights.dtype)
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
    if length == 0:
        return input.new_zeros((0,))
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
    N x bins tensor), with gradients with respect to x, y and weight. Its
    marginals are histc(x, ...) and histc(y, ...) (for pairs whose other
    coordinate is inside its range).

    Args:
        x, y: paired samples of the same shape and dtype.
        bins, min, max, kappa: as in histc, each a number for both axes or an
            (x, y) pair. min == max takes that axis's range from its data.
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
    if y.shape != x.shape or y.dtype != x.dtype or y.device != x.device:
        raise ValueError(
            f"softhist: x and y must have the same shape, dtype and device (they pair up sample "
            f"by sample), got {list(x.shape)}, {x.dtype}, {x.device} and {list(y.shape)}, "
            f"{y.dtype}, {y.device}"
        )
    if weight is not None and weight.shape != x.shape:
        raise ValueError(f"softhist: weight must have x's shape {list(x.shape)}, got {list(weight.shape)}")
    bins_x, bins_y = _pair_int(bins)
    min_x, min_y = _pair_float(min)
    max_x, max_y = _pair_float(max)
    kappa_x, kappa_y = _pair_kappa(kappa)
    if dim is None:
        xs, ys = x.reshape(-1), y.reshape(-1)
        w = weight.reshape(-1) if weight is not None else None
    else:
        xs, ys = x.movedim(dim, -1), y.movedim(dim, -1)
        w = weight.movedim(dim, -1) if weight is not None else None
    params = torch.stack([
        torch.ops.softhist.params(xs, bins_x, min_x, max_x, kappa_x, kernel, conserve_mass),
        torch.ops.softhist.params(ys, bins_y, min_y, max_y, kappa_y, kernel, conserve_mass),
    ])
    return torch.ops.softhist.scatter([xs, ys], w, params, [bins_x, bins_y], [0, 0], kernel)
