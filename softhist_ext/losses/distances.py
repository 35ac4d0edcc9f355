"""Distances between the soft histograms of a prediction and a target, and
the loss built on them."""

from typing import Optional, Tuple

import torch
from torch import Tensor

from .. import _checks
from . import _reduction
from .._ranges import bin_width, check_own_or_fixed, finite_range, to_unit
from .._sums import divided, total
from ..ops import histc

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
        return total((p - q).abs(), 1)
    if distance == "l2":
        return _safe_sqrt(total((p - q).pow(2), 1))
    if distance == "emd":
        # The CDFs at the inner edges (at the outer ones both are 0 and 1).
        cdf = torch.cumsum(p - q, -1)[..., :-1]
        return total(cdf.abs(), 1) * width
    if distance == "hellinger":
        return _safe_sqrt(0.5 * total((_capped_sqrt(p) - _capped_sqrt(q)).pow(2), 1))
    if distance == "chi2":
        s = p + q
        pos = s > 0
        return 0.5 * total(torch.where(pos, (p - q).pow(2) / torch.where(pos, s, torch.ones_like(s)),
                                       torch.zeros_like(s)), 1)
    if distance == "kl":
        # KL(target || input), torch's kl_div order; both smoothed.
        eps = 1e-10  # EPS
        n = p.shape[-1]
        ps = (p + eps) / (1 + n * eps)
        qs = (q + eps) / (1 + n * eps)
        return total(qs * (torch.log(qs) - torch.log(ps)), 1)
    if distance == "js":
        m = 0.5 * (p + q)
        return total(0.5 * (_xlogx(p) + _xlogx(q)) - _xlogx(m), 1)
    if distance == "bhattacharyya":
        eps = 1e-10  # EPS
        sp, sq = _capped_sqrt(p), _capped_sqrt(q)
        # Over sqrt(sum p * sum q) (1, but for the rounding of p and of its
        # square roots): 1 exactly for equal histograms. log((1 + eps) / (bc +
        # eps)) is then 0 in any dtype, where log1p(eps) - log(bc + eps) is eps
        # once 1 + eps rounds to 1.
        bc = total(sp * sq, 1) / torch.sqrt(total(sp * sp, 1) * total(sq * sq, 1))
        return torch.log((1 + eps) / (bc + eps)).clamp_min(0)
    if distance == "intersection":
        # 1 - sum min(p, q) for normalised p and q, summed as sum (p - min(p, q)):
        # exactly 0 for equal histograms.
        return total(p - torch.minimum(p, q), 1)
    raise ValueError(_unknown_distance(distance))


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
    return t.flatten(2)  # (not reshape(B, C, -1), which an empty batch leaves open)


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
                         in [0, log(1 + 1 / eps)]                            symmetric
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
            exact counts; a backward through input raises).
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
            distance=(distance, "str"), bins=(bins, "int"), min=(min, "constant?"),
            max=(max, "constant?"), kappa=(kappa, "constant?"), kernel=(kernel, "str"),
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
    check_own_or_fixed("histogram_distance", min is not None, max is not None, kappa is not None,
                       "input", "each item and channel's joint range of input and target")
    compute = torch.float64 if torch.float64 in (x.dtype, y.dtype) else torch.float32
    x, y = x.to(compute), y.to(compute)
    if min is None:
        # Each item and channel's joint range (empty: reported below).
        lo, hi = finite_range([x, y])
        hx_ = histc(to_unit(x, lo, hi), bins, 0.0, 1.0, None, kernel, None, -1, False, False, conserve_mass)
        hy_ = histc(to_unit(y, lo, hi), bins, 0.0, 1.0, None, kernel, None, -1, False, False, conserve_mass)
        width = bin_width(lo, hi, bins).squeeze(-1)
    else:
        assert max is not None
        if not float(min) < float(max):
            raise ValueError(f"softhist: histogram_distance needs min < max, got min={min}, max={max}")
        hx_ = histc(x, bins, float(min), float(max), kappa, kernel, None, -1, False, False, conserve_mass)
        hy_ = histc(y, bins, float(min), float(max), kappa, kernel, None, -1, False, False, conserve_mass)
        width = torch.full(x.shape[:2], (float(max) - float(min)) / bins, dtype=compute, device=x.device)
    # (total and divided: the same bits for any thread count, however many bins.)
    tx = total(hx_, 1).unsqueeze(-1)
    ty = total(hy_, 1).unsqueeze(-1)
    _check_histogram_mass(tx, "input", min is None)
    _check_histogram_mass(ty, "target", min is None)
    # (1 for an empty histogram, which only compiled code reaches: its
    # probabilities 0. A floor like 1e-300 rounds to 0 in float32.)
    p = divided(hx_, torch.where(tx > 0, tx, torch.ones_like(tx)), 1)
    q = divided(hy_, torch.where(ty > 0, ty, torch.ones_like(ty)), 1)
    out = _distance(p, q, distance, width)
    return out.reshape(()) if input.dim() == 1 else out


def _check_histogram_mass(total: Tensor, name: str, own_range: bool) -> None:
    """Raise for a histogram with no mass (its probabilities are undefined).
    Skipped under torch.compile (a data-dependent branch), where its
    probabilities are 0 (a finite distance, no NaN)."""
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
            "HistogramLoss", distance=(distance, "str"), bins=(bins, "int"), min=(min, "constant?"),
            max=(max, "constant?"), kappa=(kappa, "constant?"), kernel=(kernel, "str"),
            reduction=(reduction, "str"), conserve_mass=(conserve_mass, "bool"),
        )
        if distance not in DISTANCES:
            raise ValueError(_unknown_distance(distance))
        _reduction.check(reduction)
        _checks.module_histograms("HistogramLoss", bins, min, max, kappa, kernel, "input",
                                  "each item and channel's joint range of input and target")
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
        return _reduction.reduce(d, self.reduction)
