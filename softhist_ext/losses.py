"""Losses from fused histograms: mutual information, distances between
histograms, and the Histogram loss for embeddings."""

import math
import warnings
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from . import _checks
from .ops import _pair_float, histc, histc2d

# mutual_information warns when a given range leaves out more than this share
# of an item's mass.
OUTSIDE_SHARE_WARNING = 0.1


def _entropy(p: Tensor, dims: List[int]) -> Tensor:
    # p log p with its derivative kept finite at empty bins (log 1e-30
    # instead of -inf); the value there is exactly 0.
    return -(p * torch.log(p.clamp_min(1e-30))).sum(dims)


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


def _to_unit_range(v: Tensor, weight: Optional[Tensor]) -> Tensor:
    """v (..., N) mapped onto [0, 1] per row by the range of its finite
    samples (those with a nonzero weight, if weighted), a constant for
    autograd; a row of equal samples onto 0.5 (its range widened by 1 on
    each side, as histc widens a point)."""
    d = v.detach()
    inf = float("inf")
    if weight is not None:
        d = torch.where(weight.detach() != 0, d, torch.full_like(d, float("nan")))
    # NaN and +-inf samples out of the min and the max (nan_to_num is one
    # fast pass, unlike isfinite).
    lo = torch.nan_to_num(d, nan=inf, posinf=inf, neginf=inf).amin(-1, keepdim=True)
    hi = torch.nan_to_num(d, nan=-inf, posinf=-inf, neginf=-inf).amax(-1, keepdim=True)
    empty = lo > hi  # no counted sample: reported by the caller
    lo = torch.where(empty, torch.zeros_like(lo), lo)
    hi = torch.where(empty, torch.ones_like(hi), hi)
    point = lo == hi
    lo = torch.where(point, lo - 1, lo)
    hi = torch.where(point, hi + 1, hi)
    # A division, not a product with the reciprocal: the largest sample then
    # maps to exactly 1, inside the range.
    return (v - lo) / (hi - lo)


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
        normalized: return 2 MI / (H(x) + H(y)), in [0, 1], instead.
        weight: per-voxel weights (a mask for region-restricted MI), x's shape.
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
            min=(min, "number pair?"), max=(max, "number pair?"), kappa=(kappa, "number? pair"),
            kernel=(kernel, "str"), normalized=(normalized, "bool"), weight=(weight, "Tensor?"),
            dim=(dim, "int list?"), conserve_mass=(conserve_mass, "bool"),
        )
    if y.shape != x.shape:
        raise ValueError(f"softhist: x and y must have the same shape, got {list(x.shape)} and {list(y.shape)}")
    if weight is not None and weight.shape != x.shape:
        raise ValueError(f"softhist: weight must have x's shape {list(x.shape)}, got {list(weight.shape)}")
    if (min is None) != (max is None):
        raise ValueError(
            "softhist: mutual_information takes min and max together (a fixed range), or "
            "neither (each item's own range)"
        )
    own_range = min is None
    if own_range and kappa is not None:
        raise ValueError(
            "softhist: mutual_information's kappa is in 1/units of x and y, but without min and "
            "max each item has its own range: pass min and max too, or kappa=None (set from "
            "the bin width)"
        )
    n = x.dim()
    dims = _item_dims(n, dim, list(x.shape))
    order: List[int] = []  # the kept dimensions, then the reduced ones
    lead: List[int] = []
    for d in range(n):
        if d not in dims:
            order.append(d)
            lead.append(x.shape[d])
    order = order + dims
    shape = lead + [-1]
    w = weight.permute(order).reshape(shape) if weight is not None else None
    xs, ys = x.permute(order).reshape(shape), y.permute(order).reshape(shape)
    if xs.shape[-1] == 0:
        raise ValueError("softhist: mutual_information needs samples: each item of x and y is empty")
    # Tuples throughout: TorchScript's serialised code types a variable by
    # its first assignment.
    lo: Tuple[float, float] = (0.0, 0.0)
    hi: Tuple[float, float] = (1.0, 1.0)
    if own_range:
        if not xs.is_floating_point():
            raise ValueError(f"softhist: mutual_information needs floating-point x and y, got {xs.dtype}")
        if w is None and xs.numel() == xs.shape[-1]:
            # One item: histc2d's range from the data (min == max) is its own.
            lo = (0.0, 0.0)
            hi = (0.0, 0.0)
        else:
            compute = torch.float64 if xs.dtype == torch.float64 else torch.float32
            # Each axis's range is taken over its own finite values.
            xs = _to_unit_range(xs.to(compute), w)
            ys = _to_unit_range(ys.to(compute), w)
            if w is not None:
                w = w.to(compute)
    else:
        assert min is not None and max is not None
        lo, hi = _pair_float(min), _pair_float(max)
    joint = histc2d(xs, ys, bins, lo, hi, kappa, kernel, w, -1, conserve_mass)
    if joint.dtype != torch.float64:  # entropies in float32 or better
        joint = joint.float()
    total = joint.sum([-2, -1], keepdim=True)
    _check_mass(total.reshape(lead), xs.shape[-1], w, own_range)
    p = joint / total.clamp_min(1e-300)
    h_x = _entropy(p.sum(-1), [-1])
    h_y = _entropy(p.sum(-2), [-1])
    mi = h_x + h_y - _entropy(p, [-2, -1])
    return 2 * mi / (h_x + h_y) if normalized else mi


def _check_mass(total: Tensor, n: int, w: Optional[Tensor], own_range: bool) -> None:
    """Raise for items with no mass (their MI would be NaN); warn when a fixed
    range leaves out much of an item's mass. Skipped under torch.compile (a
    data-dependent branch), where such an item's MI is 0."""
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
    mass = total.new_full(total.shape, float(n)) if w is None else w.detach().sum(-1).to(total.dtype)
    worst = float((1 - total.detach() / mass).max())
    if worst > OUTSIDE_SHARE_WARNING:
        warnings.warn(
            f"softhist: mutual_information: {worst:.0%} of an item's mass falls outside the "
            "given [min, max] (or is not finite); widen min and max, or leave both None for "
            "each item's own range",
            stacklevel=4,
        )


class MutualInformationLoss(torch.nn.Module):
    """-mutual_information(input, target), per item, then reduced.

    Args are mutual_information's (each item's own range by default, open
    outer bins); reduction is "mean" (default), "sum" or "none", as in
    torch's losses. input and target are (B, C, *spatial): the MI is computed
    per batch item, never over the flattened batch.

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
            "MutualInformationLoss", bins=(bins, "int"), min=(min, "number?"), max=(max, "number?"),
            kappa=(kappa, "number?"), kernel=(kernel, "str"), normalized=(normalized, "bool"),
            reduction=(reduction, "str"), conserve_mass=(conserve_mass, "bool"),
        )
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f'softhist: reduction must be "mean", "sum" or "none", got {reduction!r}')
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
        if self.reduction == "mean":
            return -mi.mean()
        if self.reduction == "sum":
            return -mi.sum()
        return -mi


# ---------------------------------------------------------------------------
# Distances between soft histograms
# ---------------------------------------------------------------------------

#: The distances histogram_distance and HistogramLoss take.
DISTANCES: Tuple[str, ...] = (
    "l1", "l2", "emd", "hellinger", "chi2", "kl", "js", "bhattacharyya", "intersection",
)

# The one epsilon of the distances (see histogram_distance): kl's smoothing,
# bhattacharyya's floor, and where the square root's derivative is capped.
# (Written out as 1e-10 where it is used: TorchScript reads no global float.)
EPS = 1e-10


def _unknown_distance(distance: str) -> str:
    return (
        f"softhist: unknown distance \"{distance}\"; the distances are \"l1\", \"l2\", \"emd\", "
        "\"hellinger\", \"chi2\", \"kl\", \"js\", \"bhattacharyya\" and \"intersection\""
    )


def _safe_sqrt(s: Tensor) -> Tensor:
    """sqrt(s) for s >= 0 with derivative 0 at s == 0 (instead of inf * 0 = NaN)."""
    pos = s > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, s, torch.ones_like(s))), torch.zeros_like(s))


def _capped_sqrt(p: Tensor) -> Tensor:
    """The exact sqrt(p) of probabilities p >= 0, whose derivative 1/(2 sqrt(p))
    is kept where p >= EPS and capped at 1/(2 sqrt(EPS)) below (finite at 0)."""
    eps = 1e-10  # EPS
    big = p >= eps
    exact = torch.sqrt(torch.where(big, p, torch.ones_like(p)))
    d = p.detach()
    small = torch.sqrt(d.clamp_min(0)) + (p - d) * (0.5 / eps**0.5)
    return torch.where(big, exact, small)


def _xlogx(p: Tensor) -> Tensor:
    # As _entropy: exactly 0 at empty bins, with a finite derivative there.
    return p * torch.log(p.clamp_min(1e-30))


def _distance(p: Tensor, q: Tensor, distance: str, width: Tensor) -> Tensor:
    """distance between the probability histograms p and q (..., bins) along
    the last dimension; width: the bin width (broadcast to p.shape[:-1])."""
    if distance == "l1":
        return (p - q).abs().sum(-1)
    if distance == "l2":
        return _safe_sqrt((p - q).pow(2).sum(-1))
    if distance == "emd":
        # The CDFs at the inner edges (at the outer ones both are 0 and 1).
        cdf = torch.cumsum(p - q, -1)[..., :-1]
        return cdf.abs().sum(-1) * width
    if distance == "hellinger":
        return _safe_sqrt(0.5 * (_capped_sqrt(p) - _capped_sqrt(q)).pow(2).sum(-1))
    if distance == "chi2":
        s = p + q
        pos = s > 0
        return 0.5 * torch.where(pos, (p - q).pow(2) / torch.where(pos, s, torch.ones_like(s)),
                                 torch.zeros_like(s)).sum(-1)
    if distance == "kl":
        # KL(target || input), torch's kl_div order; both smoothed.
        eps = 1e-10  # EPS
        n = p.shape[-1]
        ps = (p + eps) / (1 + n * eps)
        qs = (q + eps) / (1 + n * eps)
        return (qs * (torch.log(qs) - torch.log(ps))).sum(-1)
    if distance == "js":
        m = 0.5 * (p + q)
        return (0.5 * (_xlogx(p) + _xlogx(q)) - _xlogx(m)).sum(-1)
    if distance == "bhattacharyya":
        eps = 1e-10  # EPS
        bc = (_capped_sqrt(p) * _capped_sqrt(q)).sum(-1)
        return (math.log1p(eps) - torch.log(bc + eps)).clamp_min(0)
    if distance == "intersection":
        # 1 - sum min(p, q) for normalised p and q, summed as sum (p - min(p, q)):
        # exactly 0 for equal histograms.
        return (p - torch.minimum(p, q)).sum(-1)
    raise ValueError(_unknown_distance(distance))


def _finite_min_max(v: Tensor) -> Tuple[Tensor, Tensor]:
    """Per row (..., N): the min and max of the finite samples, +inf and -inf
    for a row without any."""
    inf = float("inf")
    lo = torch.nan_to_num(v, nan=inf, posinf=inf, neginf=inf).amin(-1, keepdim=True)
    hi = torch.nan_to_num(v, nan=-inf, posinf=-inf, neginf=-inf).amax(-1, keepdim=True)
    return lo, hi


def _rows(t: Tensor, name: str) -> Tensor:
    """(B, C, *spatial) as (B, C, N); a 1-d tensor of samples as (1, 1, N)."""
    if t.dim() == 1:
        return t.reshape(1, 1, -1)
    if t.dim() < 3:
        raise ValueError(
            f"softhist: histogram_distance takes (B, C, *spatial) tensors, one distance per batch "
            f"item and channel, or 1-d tensors of samples; {name} has shape {list(t.shape)}: for "
            f"one single-channel image pass {name}[None, None], for a batch of sample vectors "
            f"(B, N) pass {name}[:, None]"
        )
    return t.reshape(t.shape[0], t.shape[1], -1)


def histogram_distance(
    input: Tensor,
    target: Tensor,
    distance: str = "l1",
    bins: int = 32,
    min: Optional[float] = None,
    max: Optional[float] = None,
    kappa: Optional[float] = None,
    kernel: str = "bspline",
    conserve_mass: bool = True,
) -> Tensor:
    """Distance between the soft histograms of input and target, per item and channel.

    Each batch item and channel's samples (its spatial dimensions, flattened)
    give one soft histogram (histc with dim=-1: one call for all items and
    channels of input, one for target), normalised to probabilities p
    (input) and q (target) by its total mass; the distance of each pair:

        "l1"             sum |p - q|, in [0, 2]                              metric
        "l2"             sqrt(sum (p - q)^2), in [0, sqrt 2]                 metric
        "emd"            sum_b |P_b - Q_b| * bin width, P, Q the CDFs at the
                         inner edges: the 1-d Wasserstein-1 (earth mover's)
                         distance, in the units of input                    metric
        "hellinger"      sqrt(sum (sqrt p - sqrt q)^2 / 2), in [0, 1]        metric
        "chi2"           sum (p - q)^2 / (p + q) / 2, empty bins adding 0,
                         in [0, 1]                                           symmetric
        "kl"             KL(target || input) = sum q' log(q' / p'), torch's
                         kl_div order, on the smoothed p' = (p + eps) /
                         (1 + bins * eps) and q' likewise                    asymmetric
        "js"             Jensen-Shannon divergence (p log p / 2 + q log q / 2
                         - m log m summed, m = (p + q) / 2), in [0, log 2]
                         nats; its square root is a metric                   symmetric
        "bhattacharyya"  -log(BC + eps) + log(1 + eps), BC = sum sqrt(p q),
                         in [0, log(1 / eps)]                                symmetric
        "intersection"   1 - sum min(p, q) (summed as sum (p - min(p, q))),
                         in [0, 1]; equal to l1 / 2                          metric

    All are computed on the normalised histograms, so input and target may
    have different numbers of samples; every distance is 0 for equal
    histograms. eps = 1e-10 (losses.EPS). No value or gradient is NaN or
    infinite, empty bins included: sqrt p is exact, its derivative 1/(2 sqrt
    p) capped at 1/(2 sqrt eps) for p < eps (hellinger, bhattacharyya); the
    outer square roots of l2 and hellinger have derivative 0 at 0; p log p is
    0 at p = 0 with derivative log 1e-30 there (js); kl smooths both
    histograms, so it changes by about bins * eps relative, and its gradient
    reaches q / eps where input's histogram is empty but target's is not;
    bhattacharyya's gradient likewise reaches 1 / eps for nearly disjoint
    histograms, where hellinger (-log(1 - hellinger^2) is bhattacharyya)
    stays bounded: prefer it, js, chi2 or emd for training.

    Shapes: input and target are (B, C, *spatial) with the same B and C and
    any spatial shapes (sizes may differ, e.g. a crop against a whole
    image), giving (B, C) distances; 1-d tensors of samples give one value.
    2-d tensors raise (pass x[None, None] or x[:, None]). An unbatched (C, H,
    W) image must be passed as x[None].

    Range: min and max, both given, fix one range for input and target (the
    natural choice for comparing distributions, and a fixed loss landscape
    for training); with conserve_mass (default True) samples outside it add
    nothing. Neither given: per item and channel, the joint range of the
    finite samples of input and target, a constant for autograd, so no
    sample falls outside (then emd is still in input's units, the others
    depend on that range's bins). kappa (in 1/units of input) needs a fixed
    range.

    Args:
        input, target: floating-point samples (prediction and reference).
        distance: one of DISTANCES (default "l1").
        bins: number of bins (default 32).
        min, max: a fixed range, both or neither (see above).
        kappa, kernel: as in histc; default the cubic B-spline ("hard":
            exact counts, no gradient to input).
        conserve_mass: histc's open outer bins (default True).

    Returns:
        (B, C), or a 0-d tensor for 1-d input; float64 if input or target
        is float64, else float32.

    Raises:
        ValueError: an unknown distance, mismatched (B, C), or a histogram
            with no mass (no finite sample inside the range).

    Examples:
        >>> pred = torch.rand(4, 3, 32, 32, requires_grad=True)
        >>> target = torch.rand(4, 3, 32, 32) ** 2
        >>> d = softhist_ext.losses.histogram_distance(pred, target, "emd", 64, 0.0, 1.0)
        >>> d.shape
        torch.Size([4, 3])
        >>> d.mean().backward()
        >>> x = torch.linspace(0, 1, 1000)
        >>> softhist_ext.losses.histogram_distance(x, x + 0.25, "emd", 32, -1.0, 2.0)
        tensor(0.2500)
    """
    if not torch.jit.is_scripting():
        _checks.arguments(
            "histogram_distance", input=(input, "Tensor"), target=(target, "Tensor"),
            distance=(distance, "str"), bins=(bins, "int"), min=(min, "number?"),
            max=(max, "number?"), kappa=(kappa, "number?"), kernel=(kernel, "str"),
            conserve_mass=(conserve_mass, "bool"),
        )
    if distance not in ["l1", "l2", "emd", "hellinger", "chi2", "kl", "js", "bhattacharyya",
                        "intersection"]:  # DISTANCES (TorchScript reads no global tuple)
        raise ValueError(_unknown_distance(distance))
    if (input.dim() == 1) != (target.dim() == 1):
        raise ValueError(
            f"softhist: histogram_distance takes two 1-d tensors of samples or two (B, C, "
            f"*spatial) tensors, got shapes {list(input.shape)} and {list(target.shape)}"
        )
    x, y = _rows(input, "input"), _rows(target, "target")
    if x.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"softhist: histogram_distance's input and target must have the same batch and "
            f"channel sizes (B, C), got {list(input.shape[:2])} and {list(target.shape[:2])} "
            "(their spatial sizes may differ)"
        )
    if not (x.is_floating_point() and y.is_floating_point()):
        raise ValueError(
            f"softhist: histogram_distance needs floating-point input and target, got "
            f"{input.dtype} and {target.dtype}; convert them with .float()"
        )
    if (min is None) != (max is None):
        raise ValueError(
            "softhist: histogram_distance takes min and max together (one fixed range for input "
            "and target), or neither (each item and channel's joint range)"
        )
    compute = torch.float64 if torch.float64 in (x.dtype, y.dtype) else torch.float32
    x, y = x.to(compute), y.to(compute)
    if min is None:
        if kappa is not None:
            raise ValueError(
                "softhist: histogram_distance's kappa is in 1/units of input, but without min "
                "and max each item and channel has its own range: pass min and max too, or "
                "kappa=None (set from the bin width)"
            )
        lx, hx = _finite_min_max(x.detach())
        ly, hy = _finite_min_max(y.detach())
        lo, hi = torch.minimum(lx, ly), torch.maximum(hx, hy)
        empty = lo > hi  # reported below as a histogram without mass
        lo = torch.where(empty, torch.zeros_like(lo), lo)
        hi = torch.where(empty, torch.ones_like(hi), hi)
        point = lo == hi
        lo = torch.where(point, lo - 1, lo)
        hi = torch.where(point, hi + 1, hi)
        span = hi - lo
        hx_ = histc((x - lo) / span, bins, 0.0, 1.0, None, kernel, None, -1, False, False, conserve_mass)
        hy_ = histc((y - lo) / span, bins, 0.0, 1.0, None, kernel, None, -1, False, False, conserve_mass)
        width = span.squeeze(-1) / bins
    else:
        assert max is not None
        if not float(min) < float(max):
            raise ValueError(f"softhist: histogram_distance needs min < max, got min={min}, max={max}")
        hx_ = histc(x, bins, float(min), float(max), kappa, kernel, None, -1, False, False, conserve_mass)
        hy_ = histc(y, bins, float(min), float(max), kappa, kernel, None, -1, False, False, conserve_mass)
        width = torch.full(x.shape[:2], (float(max) - float(min)) / bins, dtype=compute, device=x.device)
    tx = hx_.sum(-1, keepdim=True)
    ty = hy_.sum(-1, keepdim=True)
    _check_histogram_mass(tx, "input", min is None)
    _check_histogram_mass(ty, "target", min is None)
    p = hx_ / tx.clamp_min(1e-300)
    q = hy_ / ty.clamp_min(1e-300)
    out = _distance(p, q, distance, width)
    return out.reshape(()) if input.dim() == 1 else out


def _check_histogram_mass(total: Tensor, name: str, own_range: bool) -> None:
    """Raise for a histogram with no mass (its probabilities are undefined).
    Skipped under torch.compile (a data-dependent branch)."""
    if not torch.jit.is_scripting():
        if torch.compiler.is_compiling():
            return
    empty = (total <= 0).squeeze(-1)
    if bool(empty.any()):
        where = empty.nonzero()[0]
        raise ValueError(
            f"softhist: histogram_distance: {name}'s histogram of batch item {int(where[0])}, "
            f"channel {int(where[1])} has no mass: no finite sample"
            + ("" if own_range else " inside [min, max]")
        )


class HistogramLoss(torch.nn.Module):
    """histogram_distance(input, target) per batch item and channel, then reduced.

    Args are histogram_distance's (distance "l1" by default; see it for each
    distance, the range policy and the epsilons); reduction is "mean"
    (default), "sum" or "none" ((B, C) values), as in torch's losses.

    Examples:
        >>> loss = softhist_ext.losses.HistogramLoss("emd", bins=64, min=0.0, max=1.0)
        >>> pred = torch.rand(2, 3, 16, 16, requires_grad=True)
        >>> loss(pred, torch.rand(2, 3, 16, 16) ** 2).backward()
    """

    def __init__(
        self,
        distance: str = "l1",
        bins: int = 32,
        min: Optional[float] = None,
        max: Optional[float] = None,
        kappa: Optional[float] = None,
        kernel: str = "bspline",
        reduction: str = "mean",
        conserve_mass: bool = True,
    ) -> None:
        super().__init__()
        _checks.arguments(
            "HistogramLoss", distance=(distance, "str"), bins=(bins, "int"), min=(min, "number?"),
            max=(max, "number?"), kappa=(kappa, "number?"), kernel=(kernel, "str"),
            reduction=(reduction, "str"), conserve_mass=(conserve_mass, "bool"),
        )
        if distance not in DISTANCES:
            raise ValueError(_unknown_distance(distance))
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f'softhist: reduction must be "mean", "sum" or "none", got {reduction!r}')
        if (min is None) != (max is None):
            raise ValueError("softhist: HistogramLoss takes min and max together, or neither")
        self.distance, self.bins = distance, int(bins)
        self.min: Optional[float] = float(min) if min is not None else None
        self.max: Optional[float] = float(max) if max is not None else None
        self.kappa: Optional[float] = float(kappa) if kappa is not None else None
        self.kernel, self.reduction, self.conserve_mass = kernel, reduction, conserve_mass

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        if not torch.jit.is_scripting():
            _checks.arguments("HistogramLoss", input=(input, "Tensor"), target=(target, "Tensor"))
        d = histogram_distance(
            input, target, self.distance, self.bins, self.min, self.max, self.kappa, self.kernel,
            self.conserve_mass,
        )
        if self.reduction == "mean":
            return d.mean()
        if self.reduction == "sum":
            return d.sum()
        return d


# ---------------------------------------------------------------------------
# The Histogram loss for embeddings (Ustinova & Lempitsky, NeurIPS 2016)
# ---------------------------------------------------------------------------


def embedding_histogram_loss(embeddings: Tensor, labels: Tensor, bins: int = 101) -> Tensor:
    """The Histogram loss of Ustinova & Lempitsky ("Learning Deep Embeddings
    with Histogram Loss", NeurIPS 2016): the probability that a random
    negative pair is more similar than a random positive one.

    The embeddings are L2-normalised (torch.nn.functional.normalize, so a
    zero row stays zero), and the cosine similarities s_ij of all pairs i < j
    are split into positive (same label) and negative pairs. Each group is
    linearly interpolated onto R = bins nodes t_r = -1 + r * D, D = 2 / (R - 1)
    (the paper's eqs. 2-3: histc's box kernel at its default kappa, with the
    bins centred on the nodes, range [-1 - D/2, 1 + D/2], open ends), and
    normalised by its number of pairs, giving h+ and h-. Then

        loss = sum_r h-_r * sum_(q <= r) h+_q

    Fused: one histc call (the two groups as two weighted rows), no pairs x
    bins tensor; the N x N similarity matrix is inherent to the method.

    Args:
        embeddings: (N, D) floating point.
        labels: (N,) integer class labels.
        bins: the number of nodes R, at least 2 (default 101: D = 0.02).

    Returns:
        A 0-d tensor, embeddings' dtype.

    Raises:
        ValueError: no positive pair (no label occurs twice) or no negative
            pair (all labels equal), or bad shapes.

    Examples:
        >>> emb = torch.randn(32, 8, requires_grad=True)
        >>> labels = torch.arange(32) % 4
        >>> loss = softhist_ext.losses.embedding_histogram_loss(emb, labels)
        >>> loss.backward()
        >>> bool(0 <= loss <= 1)
        True
    """
    if not torch.jit.is_scripting():
        _checks.arguments(
            "embedding_histogram_loss", embeddings=(embeddings, "Tensor"),
            labels=(labels, "Tensor"), bins=(bins, "int"),
        )
    if embeddings.dim() != 2:
        raise ValueError(
            f"softhist: embedding_histogram_loss's embeddings must be (N, D), got shape "
            f"{list(embeddings.shape)}"
        )
    n = embeddings.shape[0]
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(
            f"softhist: embedding_histogram_loss's labels must be (N,) = [{n}], got shape "
            f"{list(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"softhist: embedding_histogram_loss's labels must be integers, got {labels.dtype}")
    if not embeddings.is_floating_point():
        raise ValueError(
            f"softhist: embedding_histogram_loss's embeddings must be floating point, got {embeddings.dtype}"
        )
    if bins < 2:
        raise ValueError(f"softhist: embedding_histogram_loss needs bins >= 2 nodes, got {bins}")
    e = torch.nn.functional.normalize(embeddings, dim=1)
    iu = torch.triu_indices(n, n, 1, device=embeddings.device)
    s = (e @ e.t())[iu[0], iu[1]]
    same = labels[iu[0]] == labels[iu[1]]
    pos = same.to(s.dtype)
    neg = (~same).to(s.dtype)
    n_pos, n_neg = pos.sum(), neg.sum()
    _check_pairs(n_pos, n_neg)
    half = 1.0 / (bins - 1)  # half the node spacing 2 / (R - 1)
    h = histc(s.expand(2, s.shape[0]), bins, -1.0 - half, 1.0 + half, None, "box",
              torch.stack([pos, neg]), -1, False, False, True)
    h_pos = h[0] / n_pos.clamp_min(1)
    h_neg = h[1] / n_neg.clamp_min(1)
    return (h_neg * torch.cumsum(h_pos, 0)).sum()


def _check_pairs(n_pos: Tensor, n_neg: Tensor) -> None:
    if not torch.jit.is_scripting():
        if torch.compiler.is_compiling():
            return
    if bool(n_pos == 0):
        raise ValueError(
            "softhist: embedding_histogram_loss needs a positive pair (two embeddings with the "
            "same label), and the batch has none"
        )
    if bool(n_neg == 0):
        raise ValueError(
            "softhist: embedding_histogram_loss needs a negative pair (two embeddings with "
            "different labels), and all labels are equal"
        )


class EmbeddingHistogramLoss(torch.nn.Module):
    """embedding_histogram_loss(embeddings, labels, bins) as a module
    (Ustinova & Lempitsky, NeurIPS 2016; see embedding_histogram_loss).

    Examples:
        >>> loss = softhist_ext.losses.EmbeddingHistogramLoss(bins=51)
        >>> emb = torch.randn(16, 4, requires_grad=True)
        >>> loss(emb, torch.arange(16) % 3).backward()
    """

    def __init__(self, bins: int = 101) -> None:
        super().__init__()
        _checks.arguments("EmbeddingHistogramLoss", bins=(bins, "int"))
        if bins < 2:
            raise ValueError(f"softhist: EmbeddingHistogramLoss needs bins >= 2 nodes, got {bins}")
        self.bins = int(bins)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return embedding_histogram_loss(embeddings, labels, self.bins)
