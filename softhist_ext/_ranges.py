"""Each row's own range of finite samples: the default range of
mutual_information, the histogram losses and the image functions; and the
dtype sums over many samples are taken in."""

from typing import List, Optional, Tuple

import torch
from torch import Tensor


def compute_dtype(t: Tensor) -> torch.dtype:
    """float64 stays float64; float16, bfloat16 and float32 are computed in
    float32 (sums over many samples pass float16's 65504, and lose
    bfloat16's 8 bits)."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def finite_range(rows: List[Tensor], weight: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """(lo, hi), each (..., 1): per row (last dimension), the range of the
    finite samples of every tensor in rows together (with a nonzero weight,
    if weighted: one weight for a single tensor), a constant for autograd.
    A row without such a sample gets [0, 1] (its caller reports it); a row
    of equal samples is widened by 1 on each side, as histc widens a point."""
    lo, hi, _ = own_range(rows, weight)
    return lo, hi


def own_range(rows: List[Tensor], weight: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, bool]:
    """finite_range, and whether every sample was finite (False where that
    was not checked): one min-max pass where it was, else the passes that
    leave non-finite samples out."""
    minmax = minmax_if_finite(rows) if weight is None else None
    if minmax is not None:
        lo, hi = widened(minmax[0], minmax[1])
        return lo, hi, True
    lo, hi = widened_finite_range(rows, weight)
    return lo, hi, False


def widened_finite_range(rows: List[Tensor], weight: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """finite_range, by passes that leave NaN and +-inf out."""
    inf = float("inf")
    lo = torch.empty(0)
    hi = torch.empty(0)
    first = True
    for v in rows:
        d = v.detach()
        if weight is not None:
            d = torch.where(weight.detach() != 0, d, torch.full_like(d, float("nan")))
        if d.shape[-1] == 0:  # rows of no samples: no finite one (amin of nothing raises)
            shape = list(d.shape[:-1]) + [1]
            row_lo = torch.full(shape, inf, dtype=d.dtype, device=d.device)
            row_hi = torch.full(shape, -inf, dtype=d.dtype, device=d.device)
        else:
            # NaN and +-inf out of the min and the max (nan_to_num is one fast
            # pass, unlike isfinite).
            row_lo = torch.nan_to_num(d, nan=inf, posinf=inf, neginf=inf).amin(-1, keepdim=True)
            row_hi = torch.nan_to_num(d, nan=-inf, posinf=-inf, neginf=-inf).amax(-1, keepdim=True)
        lo = row_lo if first else torch.minimum(lo, row_lo)
        hi = row_hi if first else torch.maximum(hi, row_hi)
        first = False
    return widened(lo, hi)


def widened(lo: Tensor, hi: Tensor) -> Tuple[Tensor, Tensor]:
    """Each row's range from its finite samples' min and max: [0, 1] for a
    row without one (lo > hi), a point widened by 1 on each side."""
    empty = lo > hi
    lo = torch.where(empty, torch.zeros_like(lo), lo)
    hi = torch.where(empty, torch.ones_like(hi), hi)
    point = lo == hi
    return torch.where(point, lo - 1, lo), torch.where(point, hi + 1, hi)


def minmax_if_finite(rows: List[Tensor]) -> Optional[Tuple[Tensor, Tensor]]:
    """Each row's min and max, each (..., 1), over every tensor of rows
    together, by one pass each (no temporaries), where every sample is
    finite; None where one is not. Eager only, as it reads the answer on the
    host (a sync on CUDA): under TorchScript, torch.compile and CUDA-graph
    capture it returns None, and callers take widened_finite_range's passes."""
    if not torch.jit.is_scripting():
        if not torch.compiler.is_compiling() and not _capturing(rows):
            return _minmax_if_finite(rows)
    return None


def _capturing(rows: List[Tensor]) -> bool:
    return any(v.is_cuda for v in rows) and torch.cuda.is_current_stream_capturing()


def _minmax_if_finite(rows: List[Tensor]) -> Optional[Tuple[Tensor, Tensor]]:
    lo, hi = None, None
    for v in rows:
        if v.shape[-1] == 0:
            return None
        row_lo, row_hi = torch.aminmax(v.detach(), dim=-1, keepdim=True)
        lo = row_lo if lo is None else torch.minimum(lo, row_lo)
        hi = row_hi if hi is None else torch.maximum(hi, row_hi)
    if lo is None or hi is None or not bool((lo.isfinite() & hi.isfinite()).all()):
        return None  # (a NaN anywhere makes its row's min and max NaN)
    return lo, hi


def to_unit(v: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """v mapped from [lo, hi] onto [0, 1]: by a division, not a product with
    the reciprocal, so the largest sample maps to exactly 1, inside the range.
    One new tensor, divided in place, where a large input's fresh pages cost
    more than the arithmetic (lo and hi are constants for autograd)."""
    s = _halving(lo, hi)
    return torch.addcmul(-lo * s, v, s).div_(hi * s - lo * s)


def from_unit(u: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """u in [0, 1] mapped back onto [lo, hi]: lo + (hi - lo) u."""
    s = _halving(lo, hi)
    return (lo * s + (hi * s - lo * s) * u) / s


def bin_width(lo: Tensor, hi: Tensor, bins: int) -> Tensor:
    """(hi - lo) / bins."""
    s = _halving(lo, hi)
    return (hi * s - lo * s) / bins / s


def _halving(lo: Tensor, hi: Tensor) -> Tensor:
    """The scale of each row's arithmetic: 1, or 0.5 where hi - lo overflows
    (float32 rows reaching past +-1.7e38). A power of 2, so that scaled
    values round as the unscaled ones would."""
    return torch.where(torch.isfinite(hi - lo), 1.0, 0.5).to(lo.dtype)


def check_own_or_fixed(fn: str, has_min: bool, has_max: bool, has_kappa: bool,
                       units: str, own: str) -> None:
    """A fixed range is min and max together; without it each row has its own
    range (`own`, e.g. "each item's own range"), so kappa, in 1/units of the
    input (`units`), has no fixed meaning and must be None. (Flags, not the
    values, which are numbers or pairs.)"""
    if has_min != has_max:
        raise ValueError(
            f"softhist: {fn} takes min and max together (a fixed range), or neither ({own})"
        )
    if not has_min and has_kappa:
        raise ValueError(
            f"softhist: {fn}'s kappa is in 1/units of {units}, but without min and max it takes "
            f"{own}: pass min and max too, or kappa=None (set from the bin width)"
        )
