"""Modules built on the ops."""

from typing import Optional

import torch
from torch import Tensor

from .ops import histc


class SoftHistogram(torch.nn.Module):
    """A differentiable histogram of its input, a drop-in for the forum's
    ``SoftHistogram(bins, min, max, sigma)`` (``sigma`` there is the sigmoid
    slope, ``kappa`` here; both names are accepted). Scriptable.

    The forum's ``GaussianHistogram(bins, min, max, sigma)``, whose ``sigma`` is
    a standard deviation, is ``SoftHistogram(bins, min, max, 1 / sigma,
    kernel="gaussian")`` (bin-integrated rather than sampled at bin centres).
    """

    def __init__(
        self,
        bins: int,
        min: float,
        max: float,
        kappa: Optional[float] = None,
        kernel: str = "logistic",
        *,
        sigma: Optional[float] = None,
    ) -> None:
        super().__init__()
        if kappa is not None and sigma is not None:
            raise ValueError("softhist: pass kappa or its forum name sigma, not both")
        self.bins = bins
        self.min = float(min)
        self.max = float(max)
        self.kappa: Optional[float] = kappa if kappa is not None else sigma
        self.kernel = kernel

    def forward(self, x: Tensor) -> Tensor:
        return histc(x, self.bins, self.min, self.max, self.kappa, kernel=self.kernel)

    def extra_repr(self) -> str:
        return f"bins={self.bins}, min={self.min}, max={self.max}, kappa={self.kappa}, kernel={self.kernel!r}"
