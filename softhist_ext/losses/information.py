"""Mutual information from fused joint histograms, and the loss built on it."""

import sys
import warnings
from types import FrameType
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from .. import _checks, _sums
from . import _reduction
from .._ranges import check_own_or_fixed, compute_dtype, finite_range, to_unit
from ..ops import _pair_float, _plain, histc2d

# mutual_information warns when a given range leaves out more than this share
# of an item's mass.
_OUTSIDE_SHARE_WARNING = 0.1


def _entropy(p: Tensor, dims: List[int]) -> Tensor:
    # p log p with its derivative kept finite at empty bins (log 1e-30
    # instead of -inf); the value there is exactly 0.
    return -_sums.total(p * torch.log(p.clamp_min(1e-30)), len(dims))


def _item_dims(n: int, dim: Optional[List[int]], shape: List[int]) -> List[int]:
    """The dimensions that hold one item's samples, checked."""
    if n == 0:
        raise ValueError("softhist: mutual_information needs samples: x and y are 0-d")
    if dim is None:
        if n == 1:
            return [0]
        if n < 4:
            raise ValueError(
                f"softhist: mutual_information takes (B, C, *spatial) inputs, one value per "
                f"batch item, or a 1-d tensor of samples; x has shape {shape}, which could be "
                "a batch or one image: for one image or volume pass x[None, None] and "
                "y[None, None] (one value), or list the dimensions of one item's samples with "
                "dim (dim=[-1] for a batch of flattened items)"
            )
        return list(range(1, n))
    if len(dim) == 0:
        raise ValueError("softhist: mutual_information's dim must list at least one dimension")
    dims: List[int] = []
    for d in dim:
        if d < -n or d >= n:
            raise IndexError(
                f"softhist: mutual_information's dim must be in [{-n}, {n - 1}] for {n}-d x "
                f"and y, got {d}"
            )
        if d % n in dims:
            raise ValueError(f"softhist: mutual_information's dim lists dimension {d % n} twice")
        dims.append(d % n)
    return dims


def mutual_information(
    x: Tensor,
    y: Tensor,
    bins: Union[int, Tuple[int, int]] = 32,
    min: Union[None, float, Tuple[float, float]] = None,
    max: Union[None, float, Tuple[float, float]] = None,
    kappa: Union[None, float, Tuple[Optional[float], Optional[float]]] = None,
    kernel: str = "bspline",
    normalized: bool = False,
    weight: Optional[Tensor] = None,
    dim: Optional[List[int]] = None,
    conserve_mass: bool = True,
) -> Tensor:
    """Mutual information of the intensities of x and y, in nats, per item.

    From the soft joint histogram p (histc2d) of each item's pairs (x_i, y_i):

        MI = H(x) + H(y) - H(x, y),   H(p) = -sum p log p

    with the marginals of p for H(x) and H(y).

    Shapes: x and y are (B, C, *spatial), as for torch's and MONAI's losses,
    and give B values, each over the channels and the spatial dimensions; a
    1-d tensor of samples gives one value. 2-d and 3-d inputs are ambiguous
    (a batch, or one image?) and raise: pass x[None, None] for one image or
    volume, or list the dimensions of one item's samples with dim.

    Range: by default each item's own range, of its finite samples (those
    with a nonzero weight when weight is given), for x and y separately, as
    MONAI's b-spline window does; so intensities in 0..255 or CT units need no
    rescaling, and the MI is that of the same volumes rescaled to [0, 1]. The
    range is a constant for autograd. With min and max the range is fixed
    (per axis or shared), and a warning says when more than 10% of an item's
    mass falls outside it.

    Args:
        x, y: images or volumes of the same shape.
        bins: bins per axis, or an (x, y) pair (default 32).
        min, max: a fixed range, both or neither (default: each item's own).
        kappa: as in histc, in 1/units of x and y; only with a fixed range,
            since the default range differs per item. None sets it from the
            bin width.
        kernel: as in histc; default the cubic B-spline Parzen window.
        normalized: return 2 MI / (H(x) + H(y)), in [0, 1], instead (1 where
            both entropies are 0, as sklearn's normalized_mutual_info_score).
            Either is non-negative up to rounding (a few 1e-7 in float32).
        weight: per-voxel weights (a mask for region-restricted MI), x's
            shape, any dtype (taken as the compute dtype).
        dim: the dimensions that hold one item's samples.
        conserve_mass: histc2d's open outer bins (default True): every pair
            inside the range keeps its whole mass, so a peak at either end of
            the range (a background, say) is not halved; pairs outside a fixed
            range add nothing.

    Returns:
        The MI per item (the shape of the other dimensions), float64 for
        float64 input, else float32.

    Raises:
        ValueError: an item has no mass at all (no finite sample inside the
            range, or all weights zero), whose MI is undefined.

    Examples:
        >>> fixed = torch.rand(2, 1, 32, 32) * 255             # (B, C, H, W), 0..255
        >>> moving = 255 - fixed + 5 * torch.randn_like(fixed)  # inverted, noisy
        >>> softhist_ext.mutual_information(fixed, moving).shape
        torch.Size([2])
        >>> ct = torch.rand(48, 48, 48) * 4000 - 1000           # one volume, CT units
        >>> softhist_ext.mutual_information(ct[None, None], ct[None, None]).shape
        torch.Size([1])
    """
    if not torch.jit.is_scripting():
        _checks.arguments(
            "mutual_information", x=(x, "Tensor"), y=(y, "Tensor"), bins=(bins, "int pair"),
            min=(min, "constant pair?"), max=(max, "constant pair?"), kappa=(kappa, "constant? pair"),
            kernel=(kernel, "str"), normalized=(normalized, "bool"), weight=(weight, "Tensor?"),
            dim=(dim, "int list?"), conserve_mass=(conserve_mass, "bool"),
        )
        min, max, kappa = _plain(min), _plain(max), _plain(kappa)  # (NumPy scalars, 0-d tensors)
    if y.shape != x.shape:
        raise ValueError(f"softhist: x and y must have the same shape, got {list(x.shape)} and {list(y.shape)}")
    if weight is not None and weight.shape != x.shape:
        raise ValueError(f"softhist: weight must have x's shape {list(x.shape)}, got {list(weight.shape)}")
    if not (x.is_floating_point() and y.is_floating_point()):
        raise ValueError(f"softhist: mutual_information needs floating-point x and y, got {x.dtype} "
                         f"and {y.dtype}; convert them with .float()")
    if x.dtype != y.dtype:
        # Both in the wider dtype, as torch's binary ops (whatever the batch size).
        common = torch.promote_types(x.dtype, y.dtype)
        x, y = x.to(common), y.to(common)
        if weight is not None and weight.is_floating_point():
            weight = weight.to(common)
    check_own_or_fixed("mutual_information", min is not None, max is not None, kappa is not None,
                       "x and y", "each item's own range")
    own_range = min is None
    n = x.dim()
    dims = _item_dims(n, dim, list(x.shape))
    order: List[int] = []  # the kept dimensions, then the reduced ones
    lead: List[int] = []
    for d in range(n):
        if d not in dims:
            order.append(d)
            lead.append(x.shape[d])
    order = order + dims
    # (flatten, not reshape(lead + [-1]), which an empty batch leaves open)
    kept = len(lead)
    w = weight.permute(order).flatten(kept) if weight is not None else None
    xs, ys = x.permute(order).flatten(kept), y.permute(order).flatten(kept)
    if xs.shape[-1] == 0:
        raise ValueError("softhist: mutual_information needs samples: each item of x and y is empty")
    # Tuples throughout: TorchScript's serialised code types a variable by
    # its first assignment.
    lo: Tuple[float, float] = (0.0, 0.0)
    hi: Tuple[float, float] = (1.0, 1.0)
    # float32 at least: a joint bin of a float16 image (its background)
    # passes 65504 pairs easily. Weights (a bool mask, say) alike.
    compute = compute_dtype(xs)
    xs, ys = xs.to(compute), ys.to(compute)
    if w is not None:
        w = w.to(compute)
    if own_range:
        if w is None and xs.numel() == xs.shape[-1]:
            # One item: histc2d's range from the data (min == max) is its own.
            lo = (0.0, 0.0)
            hi = (0.0, 0.0)
        else:
            # Each axis's range is taken over its own finite values.
            x_lo, x_hi = finite_range([xs], w)
            y_lo, y_hi = finite_range([ys], w)
            xs, ys = to_unit(xs, x_lo, x_hi), to_unit(ys, y_lo, y_hi)
    else:
        assert min is not None and max is not None
        lo, hi = _pair_float(min), _pair_float(max)
        if not (lo[0] < hi[0] and lo[1] < hi[1]):  # (min == max: histc2d's data range, not fixed)
            raise ValueError(f"softhist: mutual_information's min must be below max on each axis, "
                             f"got min={min}, max={max}; leave both None for each item's own range")
    joint = histc2d(xs, ys, bins, lo, hi, kappa, kernel, w, -1, conserve_mass)
    # (Sums whose bits do not depend on the thread count, gradients included.)
    total = _sums.total(joint, 2)[..., None, None]
    _check_mass(total.reshape(lead), xs.shape[-1], w, own_range)
    # (1 for an item with no mass, which only compiled code reaches: its MI
    # 0. A floor like 1e-300 rounds to 0 in float32.)
    p = _sums.divided(joint, torch.where(total > 0, total, torch.ones_like(total)), 2)
    h_x = _entropy(p.sum(-1), [-1])
    h_y = _entropy(p.sum(-2), [-1])
    mi = h_x + h_y - _entropy(p, [-2, -1])
    if not normalized:
        return mi
    # Both marginals in one bin (one bin, constant images): no information to
    # share, and 1 as sklearn's normalized_mutual_info_score, not 0 / 0.
    h = h_x + h_y
    spread = h > 0
    return torch.where(spread, 2 * mi / torch.where(spread, h, torch.ones_like(h)), torch.ones_like(h))


def _check_mass(total: Tensor, n: int, w: Optional[Tensor], own_range: bool) -> None:
    """Raise for items with no mass (their MI would be NaN); warn when a fixed
    range leaves out much of an item's mass. Skipped under torch.compile (a
    data-dependent branch), where such an item's MI is 0 (normalized: 1,
    a constant image's), with finite gradients."""
    if not torch.jit.is_scripting():
        if torch.compiler.is_compiling():
            return
    empty = total <= 0
    if bool(empty.any()):
        item = int(empty.reshape(-1).nonzero()[0].item())
        raise ValueError(
            f"softhist: mutual_information: item {item} (flattened over the batch dimensions) "
            "has no mass: no pair of finite samples"
            + ("" if own_range else " inside [min, max]")
            + ", or all its weights are zero, so its mutual information is undefined"
        )
    if not torch.jit.is_scripting():
        if not own_range:
            _warn_outside(total, n, w)


def _warn_outside(total: Tensor, n: int, w: Optional[Tensor]) -> None:
    # Non-finite samples count as outside: they are not in the histogram either.
    if total.numel() == 0:
        return
    mass = total.new_full(total.shape, float(n)) if w is None else w.detach().sum(-1).to(total.dtype)
    worst = float((1 - total.detach() / mass).max())
    if worst > _OUTSIDE_SHARE_WARNING:
        level = 4
        if not torch.jit.is_scripting():
            level = _caller_level()
        warnings.warn(
            f"softhist: mutual_information: {worst:.0%} of an item's mass falls outside the "
            "given [min, max] (or is not finite); widen min and max, or leave both None for "
            "each item's own range",
            stacklevel=level,
        )


def _caller_level() -> int:
    """The warnings stacklevel, seen from _warn_outside, of the first frame
    outside this package and torch.nn's module calls: the user's call."""
    frame: Optional[FrameType] = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("softhist_ext.", "torch.nn.")):
        frame, level = frame.f_back, level + 1
    return level


class MutualInformationLoss(torch.nn.Module):
    """-mutual_information(input, target), per item, then reduced.

    Args are mutual_information's, each one number for both x and y (no
    (x, y) pairs; each item's own range by default, open outer bins);
    reduction is "mean" (default), "sum" or "none", as in
    torch's losses. input and target are (B, C, *spatial): the MI is computed
    per batch item, never over the flattened batch. forward(input, target,
    weight=None) takes mutual_information's weight (a mask, input's shape).

    Examples:
        >>> loss = softhist_ext.losses.MutualInformationLoss(bins=32)
        >>> fixed = torch.rand(2, 1, 32, 32)
        >>> moving = (1 - fixed).requires_grad_()
        >>> loss(moving, fixed).backward()
    """

    def __init__(
        self,
        bins: int = 32,
        min: Optional[float] = None,
        max: Optional[float] = None,
        kappa: Optional[float] = None,
        kernel: str = "bspline",
        normalized: bool = False,
        reduction: str = "mean",
        conserve_mass: bool = True,
    ) -> None:
        super().__init__()
        _checks.arguments(
            "MutualInformationLoss", bins=(bins, "int"), min=(min, "constant?"), max=(max, "constant?"),
            kappa=(kappa, "constant?"), kernel=(kernel, "str"), normalized=(normalized, "bool"),
            reduction=(reduction, "str"), conserve_mass=(conserve_mass, "bool"),
        )
        _reduction.check(reduction)
        _checks.module_histograms("MutualInformationLoss", bins, min, max, kappa, kernel,
                                  "x and y", "each item's own range")
        # Plain Python numbers, the types TorchScript reads the attributes as.
        self.bins = int(bins)
        self.min: Optional[float] = float(min) if min is not None else None
        self.max: Optional[float] = float(max) if max is not None else None
        self.kappa: Optional[float] = float(kappa) if kappa is not None else None
        self.kernel, self.normalized, self.reduction = kernel, normalized, reduction
        self.conserve_mass = conserve_mass

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        if not torch.jit.is_scripting():
            _checks.arguments(
                "MutualInformationLoss", input=(input, "Tensor"), target=(target, "Tensor"),
                weight=(weight, "Tensor?"),
            )
        mi = mutual_information(
            input, target, self.bins, self.min, self.max, self.kappa, self.kernel,
            self.normalized, weight, None, self.conserve_mass,
        )
        return _reduction.reduce(-mi, self.reduction)
