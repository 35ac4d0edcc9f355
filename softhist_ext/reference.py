"""Dense pure-PyTorch formulas: an N x bins tensor of kernel values. For tests
only (values and gradcheck); the package never calls this."""

from typing import Optional

import torch
from torch import Tensor


def kernel_cdf(kernel: str, t: Tensor) -> Tensor:
    """The kernels' CDFs, in units of t = kappa * (x - edge), written out."""
    if kernel == "logistic":
        return torch.sigmoid(t)
    if kernel == "gaussian":
        return torch.special.ndtr(t)
    # Written in t, not |t|, so that autograd's derivative is right at t = 0
    # too (|t| has gradient 0 there).
    if kernel == "triangular":
        return torch.where(t < 0, 0.5 * (1 + t).clamp_min(0) ** 2, 1 - 0.5 * (1 - t).clamp_min(0) ** 2)
    if kernel == "bspline":
        a = t.abs()
        inner = 0.5 + (4 * t - 2 * t**3 + 0.75 * t**3 * a) / 6
        outer = torch.where(t < 0, (2 + t).clamp_min(0) ** 4 / 24, 1 - (2 - t).clamp_min(0) ** 4 / 24)
        return torch.where(a < 1, inner, outer)
    if kernel == "box":  # density 1/2 on [-1, 1): its value on the right at the knots
        inside = (t >= -1) & (t < 1)
        return torch.where(inside, 0.5 * (t + 1), (t >= 1).to(t.dtype))
    raise ValueError(kernel)


def kernel_density(kernel: str, t: Tensor) -> Tensor:
    """The kernels' densities k(t) = K'(t): kernel_cdf differentiated by
    autograd (kernel_cdf is written so that this is right at its kinks too)."""
    t = t.detach().to(torch.float64).requires_grad_()
    (k,) = torch.autograd.grad(kernel_cdf(kernel, t).sum(), t)
    return k


def default_kappa_width(kernel: str) -> float:
    """kappa * bin width for kappa=None: the library's policy, asked of it."""
    return float(torch.ops.softhist.params(torch.zeros(1), 1, 0.0, 1.0, None, kernel)[2])


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
    conserve_mass: bool = False,
) -> Tensor:
    """The soft histogram written out: the kernel's CDF at every edge, for every
    sample (an N x (bins + 1) tensor). ``conserve_mass``: the CDF is 1 at the
    first edge and 0 at the last, and only samples in [min, max] count."""
    finite_all = torch.isfinite(input)
    lo, hi = float(min), float(max)
    if lo == hi:
        if bool(finite_all.any()):
            finite_values = input.detach()[finite_all]
            lo, hi = float(finite_values.min()), float(finite_values.max())
        if lo == hi:
            lo, hi = lo - 1, hi + 1
    if kappa is None:
        kappa = default_kappa_width(kernel) * bins / (hi - lo)
    x = input.reshape(-1) if dim is None else input.movedim(dim, -1)
    w = torch.ones_like(x) if weight is None else (
        weight.reshape(-1) if dim is None else weight.movedim(dim, -1))
    finite = torch.isfinite(x)
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64, device=x.device)
    xs = torch.where(finite, x, torch.zeros_like(x)).to(torch.float64)
    cdf = kernel_cdf(kernel, kappa * (xs[..., None] - edges))
    if conserve_mass:
        cdf, finite = _open_ends(cdf, x, finite, lo, hi)
    per_sample = (cdf[..., :-1] - cdf[..., 1:]) * (finite * w).to(torch.float64)[..., None]
    out = per_sample.sum(-2)
    if density:
        out = out / (out.sum(-1, keepdim=True) * ((hi - lo) / bins))
    out = out.to(input.dtype)
    return out if dim is None else out.movedim(-1, dim)


def histogram_edges(input: Tensor, edges: Tensor, kappa, kernel: str = "logistic",
                    weight: Optional[Tensor] = None, conserve_mass: bool = False) -> Tensor:
    """The soft histogram over explicit edges (a tensor of bins + 1, any
    spacing), written out along input's last dimension, in float64. edges and
    kappa (a number or a 0-d tensor) may require grad: autograd through this
    formula is the reference for the gradients with respect to them."""
    x = input.to(torch.float64)
    finite = torch.isfinite(x)
    xs = torch.where(finite, x, torch.zeros_like(x))
    cdf = kernel_cdf(kernel, kappa * (xs[..., None] - edges.to(torch.float64)))
    if conserve_mass:
        lo, hi = float(edges[0].detach()), float(edges[-1].detach())
        cdf, finite = _open_ends(cdf, input, finite, lo, hi)
    w = torch.ones_like(x) if weight is None else weight.to(torch.float64)
    return ((cdf[..., :-1] - cdf[..., 1:]) * (finite * w)[..., None]).sum(-2)


def _open_ends(cdf: Tensor, x: Tensor, counted: Tensor, lo: float, hi: float):
    """conserve_mass: the CDF at the outer edges set to 1 and 0, and only the
    samples in [lo, hi] (compared in x's dtype, as torch.histc does) counted."""
    inner = cdf[..., 1:-1]
    cdf = torch.cat([torch.ones_like(cdf[..., :1]), inner, torch.zeros_like(cdf[..., :1])], -1)
    inside = (x >= torch.tensor(lo, dtype=x.dtype)) & (x <= torch.tensor(hi, dtype=x.dtype))
    return cdf, counted & inside


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


def histogramdd(coords, bins, lo, hi, kappa, kernel: str = "logistic",
                weight: Optional[Tensor] = None, conserve_mass: bool = False) -> Tensor:
    """The D-axis joint histogram written out: the outer product of each
    sample's bin masses on every axis, summed (N x bins_1 x ... x bins_D).
    ``coords`` holds D tensors (..., N); ``bins``, ``lo``, ``hi``, ``kappa``
    one value per axis; explicit ranges only."""
    edges = [torch.linspace(lo[a], hi[a], bins[a] + 1, dtype=torch.float64, device=v.device)
             for a, v in enumerate(coords)]
    return histogramdd_edges(coords, edges, kappa, kernel, weight, conserve_mass)


def histogramdd_edges(coords, edges, kappa, kernel: str = "logistic",
                      weight: Optional[Tensor] = None, conserve_mass: bool = False) -> Tensor:
    """histogramdd over explicit edges: ``edges`` holds one 1-d tensor of
    bins + 1 edges (any spacing) per axis, ``kappa`` one value per axis."""

    def masses(v: Tensor, e: Tensor, k: float) -> Tensor:
        e = e.to(torch.float64)
        cdf = kernel_cdf(kernel, k * (v.to(torch.float64)[..., None] - e))
        if conserve_mass:
            lo, hi = float(e[0].detach()), float(e[-1].detach())  # membership: no gradient
            cdf, inside = _open_ends(cdf, v, torch.ones_like(v, dtype=torch.bool), lo, hi)
            return (cdf[..., :-1] - cdf[..., 1:]) * inside[..., None]
        return cdf[..., :-1] - cdf[..., 1:]

    x = coords[0]
    out = torch.ones_like(x, dtype=torch.float64) if weight is None else weight.to(torch.float64)
    out = out[..., None]  # (..., N, 1), then one more bin dimension per axis
    for axis, v in enumerate(coords):
        m = masses(v, edges[axis], kappa[axis])
        out = out.unsqueeze(-1) * m.reshape(m.shape[:-1] + (1,) * (axis + 1) + m.shape[-1:])
    return out.squeeze(x.dim()).sum(x.dim() - 1).to(x.dtype)


def histc2d(x: Tensor, y: Tensor, bins, lo, hi, kappa, kernel: str = "logistic",
            weight: Optional[Tensor] = None, conserve_mass: bool = False) -> Tensor:
    """The joint histogram written out (histogramdd of the two axes)."""
    return histogramdd([x, y], bins, lo, hi, kappa, kernel, weight, conserve_mass)
