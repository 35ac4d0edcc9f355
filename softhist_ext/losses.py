"""Mutual information from fused joint histograms, and the loss built on it."""

from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from . import _checks
from .ops import histc2d


def _entropy(p: Tensor, dims: List[int]) -> Tensor:
    # p log p with its derivative kept finite at empty bins (log 1e-30
    # instead of -inf); the value there is exactly 0.
    return -(p * torch.log(p.clamp_min(1e-30))).sum(dims)


def mutual_information(
    x: Tensor,
    y: Tensor,
    bins: Union[int, Tuple[int, int]] = 32,
    min: Union[float, Tuple[float, float]] = 0.0,
    max: Union[float, Tuple[float, float]] = 1.0,
    kappa: Union[None, float, Tuple[Optional[float], Optional[float]]] = None,
    kernel: str = "bspline",
    normalized: bool = False,
    weight: Optional[Tensor] = None,
    dim: Optional[List[int]] = None,
) -> Tensor:
    """Mutual information of the intensities of ``x`` and ``y``, in nats.

    Computed from the soft joint histogram (:func:`histc2d`) per item: by
    default ``x`` and ``y`` of shape ``(B, ...)`` give ``B`` values, each over
    all the other dimensions (a 1-d input gives one value). ``dim`` lists the
    dimensions that hold one item's samples instead.

    Args:
        x, y: images or volumes of the same shape, intensities in ``[min, max]``.
        bins, min, max, kappa, kernel: the joint histogram's, per axis or shared
            (default: 32 bins over [0, 1], the cubic B-spline Parzen window).
        normalized: return ``2 MI / (H(x) + H(y))``, in [0, 1], instead.
        weight: per-voxel weights (a mask for region-restricted MI), ``x``'s shape.
        dim: the dimensions reduced into one distribution.

    Returns:
        The mutual information per item (shape of the remaining dimensions),
        float64 for float64 input, else float32.
    """
    if not torch.jit.is_scripting():
        _checks.arguments(
            "mutual_information", x=(x, "Tensor"), y=(y, "Tensor"), bins=(bins, "int pair"),
            min=(min, "number pair"), max=(max, "number pair"), kappa=(kappa, "number? pair"),
            kernel=(kernel, "str"), normalized=(normalized, "bool"), weight=(weight, "Tensor?"),
            dim=(dim, "int list?"),
        )
    if y.shape != x.shape:
        raise ValueError(f"softhist: x and y must have the same shape, got {list(x.shape)} and {list(y.shape)}")
    if weight is not None and weight.shape != x.shape:
        raise ValueError(f"softhist: weight must have x's shape {list(x.shape)}, got {list(weight.shape)}")
    n = x.dim()
    if n == 0:
        raise ValueError("softhist: mutual_information needs samples: x and y are 0-d")
    if dim is None:
        dim = list(range(1, n)) if n > 1 else [0]
    if len(dim) == 0:
        raise ValueError("softhist: mutual_information's dim must list at least one dimension")
    dims: List[int] = []
    for d in dim:
        if d < -n or d >= n:
            raise IndexError(f"softhist: mutual_information's dim {d} is out of range for {n}-d x and y")
        if d % n in dims:
            raise ValueError(f"softhist: mutual_information's dim lists dimension {d % n} twice")
        dims.append(d % n)
    order: List[int] = []  # the kept dimensions, then the reduced ones
    lead: List[int] = []
    for d in range(x.dim()):
        if d not in dims:
            order.append(d)
            lead.append(x.shape[d])
    order = order + dims
    shape = lead + [-1]
    w = weight.permute(order).reshape(shape) if weight is not None else None
    xs, ys = x.permute(order).reshape(shape), y.permute(order).reshape(shape)
    joint = histc2d(xs, ys, bins, min, max, kappa, kernel, w, -1)
    if joint.dtype != torch.float64:  # entropies in float32 or better
        joint = joint.float()
    p = joint / joint.sum([-2, -1], keepdim=True)
    h_x = _entropy(p.sum(-1), [-1])
    h_y = _entropy(p.sum(-2), [-1])
    mi = h_x + h_y - _entropy(p, [-2, -1])
    return 2 * mi / (h_x + h_y) if normalized else mi


class MutualInformationLoss(torch.nn.Module):
    """``-mutual_information(input, target)``, per item, then reduced.

    Args are :func:`mutual_information`'s; ``reduction`` is ``"mean"``
    (default), ``"sum"`` or ``"none"``, as in torch's losses. The MI is computed
    per batch item (dimension 0), never over the flattened batch.
    """

    def __init__(
        self,
        bins: int = 32,
        min: float = 0.0,
        max: float = 1.0,
        kappa: Optional[float] = None,
        kernel: str = "bspline",
        normalized: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        _checks.arguments(
            "MutualInformationLoss", bins=(bins, "int"), min=(min, "number"), max=(max, "number"),
            kappa=(kappa, "number?"), kernel=(kernel, "str"), normalized=(normalized, "bool"),
            reduction=(reduction, "str"),
        )
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f'softhist: reduction must be "mean", "sum" or "none", got {reduction!r}')
        # Plain Python numbers, the types TorchScript reads the attributes as.
        self.bins, self.min, self.max = int(bins), float(min), float(max)
        self.kappa: Optional[float] = float(kappa) if kappa is not None else None
        self.kernel, self.normalized, self.reduction = kernel, normalized, reduction

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        if not torch.jit.is_scripting():
            _checks.arguments(
                "MutualInformationLoss", input=(input, "Tensor"), target=(target, "Tensor"),
                weight=(weight, "Tensor?"),
            )
        mi = mutual_information(
            input, target, self.bins, self.min, self.max, self.kappa, self.kernel,
            self.normalized, weight,
        )
        if self.reduction == "mean":
            return -mi.mean()
        if self.reduction == "sum":
            return -mi.sum()
        return -mi
