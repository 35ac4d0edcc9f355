"""Modules built on the ops."""

from typing import Optional

import torch
from torch import Tensor

from . import _checks
from .ops import histc


class SoftHistogram(torch.nn.Module):
    """A differentiable histogram of its input (softhist_ext.histc), a drop-in
    for the forum's SoftHistogram(bins, min, max, sigma) (sigma there is the
    sigmoid slope, kappa here; both names are accepted). Scriptable.

    The forum's GaussianHistogram(bins, min, max, sigma), whose sigma is a
    standard deviation, is SoftHistogram(bins, min, max, 1 / sigma,
    kernel="gaussian") (bin-integrated rather than sampled at bin centres).

    Examples:
        >>> layer = softhist_ext.nn.SoftHistogram(bins=8, min=-2.0, max=2.0)
        >>> layer(torch.randn(1000)).shape
        torch.Size([8])
        >>> scripted = torch.jit.script(layer)
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
        _checks.arguments(
            "SoftHistogram", bins=(bins, "int"), min=(min, "number"), max=(max, "number"),
            kappa=(kappa, "number?"), kernel=(kernel, "str"), sigma=(sigma, "number?"),
        )
        if kappa is not None and sigma is not None:
            raise ValueError("softhist: pass kappa or its forum name sigma, not both")
        # Plain Python numbers, the types TorchScript reads the attributes as.
        self.bins = int(bins)
        self.min = float(min)
        self.max = float(max)
        k = kappa if kappa is not None else sigma
        self.kappa: Optional[float] = float(k) if k is not None else None
        self.kernel = kernel

    def forward(self, x: Tensor) -> Tensor:
        return histc(x, self.bins, self.min, self.max, self.kappa, kernel=self.kernel)

    def extra_repr(self) -> str:
        return f"bins={self.bins}, min={self.min}, max={self.max}, kappa={self.kappa}, kernel={self.kernel!r}"
