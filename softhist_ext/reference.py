"""Dense pure-PyTorch formulas: an N x bins tensor of kernel values. For tests
only (values and gradcheck); the package never calls this."""

from typing import Optional

import torch
from torch import Tensor


def histc(
    input: Tensor,
    bins: int = 100,
    min: float = 0.0,
    max: float = 0.0,
    kappa: Optional[float] = None,
) -> Tensor:
    """The soft histogram written out: sigmoid differences at every edge."""
    x = input.reshape(-1)
    finite = torch.isfinite(x)
    lo, hi = float(min), float(max)
    if lo == hi:
        if bool(finite.any()):
            lo, hi = float(x[finite].min()), float(x[finite].max())
        if lo == hi:
            lo, hi = lo - 1, hi + 1
    if kappa is None:
        kappa = 4.0 * bins / (hi - lo)
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64, device=x.device)
    xs = torch.where(finite, x, torch.zeros_like(x)).to(torch.float64)
    cdf = torch.sigmoid(kappa * (xs[:, None] - edges[None, :]))
    per_sample = (cdf[:, :-1] - cdf[:, 1:]) * finite[:, None]
    return per_sample.sum(0).to(input.dtype)


def forum_soft_histogram(x: Tensor, bins: int, min: float, max: float, sigma: float) -> Tensor:
    """The widely copied forum ``SoftHistogram`` module's forward, verbatim in
    substance: sigmoid differences around bin centres."""
    delta = float(max - min) / float(bins)
    centers = float(min) + delta * (torch.arange(bins, dtype=x.dtype, device=x.device) + 0.5)
    d = torch.unsqueeze(x, 0) - torch.unsqueeze(centers, 1)
    d = torch.sigmoid(sigma * (d + delta / 2)) - torch.sigmoid(sigma * (d - delta / 2))
    return d.sum(dim=1)


def forum_gaussian_histogram(
    x: Tensor, bins: int, min: float, max: float, sigma: float
) -> Tensor:
    """The forum's ``GaussianHistogram``: a Gaussian pdf at each bin centre,
    times the bin width."""
    delta = float(max - min) / float(bins)
    centers = float(min) + delta * (torch.arange(bins, dtype=x.dtype, device=x.device) + 0.5)
    d = torch.unsqueeze(x, 0) - torch.unsqueeze(centers, 1)
    d = torch.exp(-0.5 * (d / sigma) ** 2) / (sigma * (2 * torch.pi) ** 0.5) * delta
    return d.sum(dim=1)
