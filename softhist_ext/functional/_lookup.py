"""What equalize, equalize_clahe and match_histograms share: argument checks,
the range (each row's own, or a fixed one), per-row histograms and the soft
CDF lookup (one gather over the cumulative histogram)."""

from typing import Optional, Tuple

import torch
from torch import Tensor

from .. import _checks
from .._ranges import (check_own_or_fixed, compute_dtype, finite_range, minmax_if_finite, own_range,
                       to_unit)


def check_image(fn: str, name: str, image: Tensor, spatial_dims: int) -> None:
    """Raise for an image that is not floating point or has fewer dimensions
    than its spatial ones."""
    if not image.is_floating_point():
        raise ValueError(
            f"softhist: {fn}'s {name} must be a floating-point image, got {image.dtype}; "
            f"convert it with {name}.float() (the values keep their units)"
        )
    if spatial_dims < 1:
        raise ValueError(f"softhist: {fn}'s spatial_dims must be >= 1, got {spatial_dims}")
    if image.dim() < spatial_dims:
        raise ValueError(
            f"softhist: {fn}'s {name} must have at least spatial_dims = {spatial_dims} "
            f"dimensions (the histogram is over the last {spatial_dims}; any before them are "
            f"independent images or channels), got shape {list(image.shape)}"
        )
    numel = 1
    for s in image.shape[image.dim() - spatial_dims:]:
        numel *= s
    if numel == 0:
        raise ValueError(
            f"softhist: {fn}'s {name} has no pixels: its spatial shape is "
            f"{list(image.shape[image.dim() - spatial_dims:])}"
        )


def check_common(fn: str, bins: int, min: Optional[float], max: Optional[float],
                 kappa: Optional[float]) -> None:
    """bins >= 1, min and max together with min < max, kappa only with them."""
    if bins < 1:
        raise ValueError(f"softhist: {fn}'s bins must be >= 1, got {bins}")
    check_own_or_fixed(fn, min is not None, max is not None, kappa is not None, "the image",
                       "each image and channel's own range")
    if min is not None and max is not None:
        if not float(min) < float(max):
            raise ValueError(f"softhist: {fn}'s min must be below max, got min={min}, max={max}")


def check_types(fn: str, bins: int, min: Optional[float], max: Optional[float],
                kappa: Optional[float], kernel: str) -> None:
    if not torch.jit.is_scripting():
        _checks.arguments(
            fn, bins=(bins, "int"), min=(min, "constant?"), max=(max, "constant?"),
            kappa=(kappa, "constant?"), kernel=(kernel, "str"),
        )


def rows(image: Tensor, spatial_dims: int) -> Tensor:
    """image (*lead, *spatial) as (*lead, N), in the compute dtype."""
    # (flatten, not reshape(lead + [-1]), which an empty batch leaves open)
    return image.to(compute_dtype(image)).flatten(image.dim() - spatial_dims)


def in_range(v: Tensor, min: Optional[float],
             max: Optional[float]) -> Tuple[Tensor, float, float, bool]:
    """The values to histogram, their range and whether every value is
    finite and inside it (so that clamping into the range and keeping NaN
    change nothing; False where that was not checked): each row (last
    dimension) mapped onto [0, 1] by its own finite range (a constant for
    autograd), or v itself with the fixed [min, max]."""
    if min is None or max is None:
        # (v - lo) / (hi - lo) of finite v in [lo, hi] rounds into [0, 1].
        lo, hi, finite = own_range([v])
        return to_unit(v, lo, hi), 0.0, 1.0, finite
    minmax = minmax_if_finite([v])
    inside = minmax is not None and bool(((minmax[0] >= min) & (minmax[1] <= max)).all())
    return v, float(min), float(max), inside


def row_range(v: Tensor, min: Optional[float], max: Optional[float]) -> Tuple[Tensor, Tensor]:
    """(lo, hi) per row of v (..., N), each (..., 1): the fixed range, or the
    row's own as in_range takes it (its finite values; a point widened by 1
    on each side). in_range's values are (v - lo) / (hi - lo)."""
    if min is not None and max is not None:
        shape = list(v.shape[:-1]) + [1]
        return torch.full(shape, float(min), dtype=v.dtype, device=v.device), torch.full(
            shape, float(max), dtype=v.dtype, device=v.device)
    return finite_range([v])


def histograms(v: Tensor, bins: int, lo: float, hi: float, kappa: Optional[float],
               kernel: str) -> Tuple[Tensor, Tensor]:
    """One histogram per row of v (..., N) -> (params (1, 4), hist (..., bins)),
    with open outer bins (every sample in [lo, hi] keeps its whole mass)."""
    params = torch.ops.softhist.params(v, bins, lo, hi, kappa, kernel, True)[None]
    hist = torch.ops.softhist.scatter([v], None, params, [bins], [0], kernel)
    return params, hist


def cdf(hist: Tensor) -> Tensor:
    """The inclusive cumulative histogram of each row, normalised to end at 1.
    A row without mass (every value beyond a fixed range, or NaN) gets the
    uniform one, (b + 1) / bins: the identity map over the range, so values
    above it read 1 and those below it about 0."""
    c = hist.cumsum(-1)
    total = c[..., -1:]
    bins = hist.shape[-1]
    uniform = torch.arange(1, bins + 1, dtype=c.dtype, device=c.device) / bins
    return torch.where(total > 0, c / torch.where(total > 0, total, torch.ones_like(total)), uniform)


def clamp(v: Tensor, lo: float, hi: float) -> Tensor:
    """v clamped into [lo, hi], its gradient 1 on the ends too (torch's clamp
    gives a value on an end 0 or 1/2 from torch 2.14): the pixels at the
    range's ends, and at a CDF's 1, keep their lookup's gradient."""
    return torch.where(v < lo, lo, torch.where(v > hi, hi, v))


def lookup(v: Tensor, table: Tensor, params: Tensor, kernel: str) -> Tensor:
    """sum_b table[b] * mass(v_i, b) per row: the soft table lookup, one
    gather. Callers clamp v into the range first (beyond it a CDF is flat),
    so +-inf read the end bins, unless in_range found every value inside;
    NaN reads 0."""
    return torch.ops.softhist.gather([v], table, params, [0], kernel)
