"""Differentiable histogram matching (specification)."""

from typing import List, Optional

import torch
from torch import Tensor

from .. import _checks
from .._ranges import from_unit, to_unit
from . import _lookup


def _inverse_cdf(u: Tensor, q: Tensor, values: Tensor, nonempty: Tensor) -> Tensor:
    """The piecewise-linear inverse of the CDF given by the points
    (q[b], values[b]) of the nonempty bins, at u (rows of u, q, values and
    nonempty pair up): for the first bin j with q[j] >= u, the lerp from
    (q[j - 1], value of the last nonempty bin before j) to (q[j], values[j]),
    which is np.interp over the nonempty bins' points; below the first
    nonempty bin's q, its value. Differentiable in u and q."""
    bins = q.shape[-1]
    # (q is a broadcast reference's rows, strided: searchsorted wants them contiguous.)
    j = torch.searchsorted(q.detach().contiguous(), u.detach()).clamp(max=bins - 1)
    # u = 0 finds an empty first bin (q = 0 too): from the first nonempty one.
    j = torch.maximum(j, nonempty.to(torch.int64).argmax(-1, keepdim=True))
    q_before = torch.cat([torch.zeros_like(q[..., :1]), q[..., :-1]], -1)
    index = torch.arange(bins, device=q.device).expand(q.shape)
    last = torch.where(nonempty, index, torch.full_like(index, -1)).cummax(-1).values
    previous = torch.cat([torch.full_like(last[..., :1], -1), last[..., :-1]], -1)
    value_before = torch.where(previous >= 0, values.gather(-1, previous.clamp(min=0)), values)
    # Each bin's lerp (rows x bins: small), then one per pixel. A bin whose
    # CDF does not rise maps to its value.
    step = q - q_before
    ok = step > 0
    start = torch.where(ok, value_before, values)
    rise = torch.where(ok, values - value_before, torch.zeros_like(values))
    step = torch.where(ok, step, torch.ones_like(step))
    t = ((u - q_before.gather(-1, j)) / step.gather(-1, j)).clamp(0.0, 1.0)
    return start.gather(-1, j) + t * rise.gather(-1, j)


def _check_reference_mass(total: Tensor, fixed_range: bool) -> None:
    """Raise for a reference image-channel with no mass: it has no inverse
    CDF. Skipped under torch.compile (a data-dependent branch)."""
    if not torch.jit.is_scripting():
        if torch.compiler.is_compiling():
            return
    empty = (total <= 0).reshape(-1)
    if bool(empty.any()):
        raise ValueError(
            f"softhist: match_histograms' reference image-channel {int(empty.nonzero()[0, 0])} "
            "(in its leading dimensions' order) has no mass: no finite value"
            + (" inside [min, max]" if fixed_range else "")
        )


def match_histograms(
    source: Tensor,
    reference: Tensor,
    bins: int = 256,
    min: Optional[float] = None,
    max: Optional[float] = None,
    kappa: Optional[float] = None,
    kernel: str = "box",
    spatial_dims: int = 2,
) -> Tensor:
    """Differentiable histogram matching, per image and channel.

    Each source pixel's soft CDF value in its own image-channel's histogram
    (as in equalize: one gather over the cumulative histogram),

        u_i = sum_b C_src[b] * mass(x_i, b),

    goes through the inverse CDF of the matching reference image-channel:
    the piecewise-linear interpolation of the points (C_ref[b], v_b), C_ref
    the reference's normalised inclusive cumulative histogram and v_b its bin
    centres, over the bins that hold mass (empty bins are skipped, as
    skimage interpolates between the values actually present); below the
    first point, its value. Differentiable in source (through u: its
    histogram and each pixel's lookup) and in reference (through C_ref).

    Hard limit (kernel="hard"): skimage.exposure.match_histograms (run on
    each channel), exactly for images of an integer dtype with bins
    centred on the integers (256 bins over [-0.5, 255.5] for 8-bit values);
    otherwise skimage takes the values present where this takes bin
    centres (within half a bin where the source, like camera / 255, holds
    few distinct values), and each source value's own quantile where this
    takes its bin's CDF: on noisy or blurred float images several bins off
    (up to 3.6 bins, 8-bit camera plus noise onto astronaut). Matching an
    image to itself gives each pixel its bin centre (within half a bin of
    the identity; a soft kernel adds its smoothing).

    Args:
        source: float image (*lead, *spatial), any range; the histograms are
            over the last spatial_dims dimensions, the dimensions before them
            are independent images and channels.
        reference: float image (*lead_ref, *spatial_ref): lead_ref must
            broadcast to lead (e.g. one (C, H', W') reference for a (B, C, H,
            W) batch), its spatial size may differ.
        bins: number of bins, at least 1.
        min, max: a fixed range for source and reference (both or neither).
            None: each image-channel's own range of finite values (source and
            reference each their own), a constant for autograd.
        kappa: inverse kernel scale in 1/units of the images; only with min
            and max. None sets it from the bin width.
        kernel: a smoothing kernel of softhist_ext.KERNELS, or "hard".
            Default "box": linear binning, so each lookup interpolates C
            linearly between bin centres (skimage's np.interp), and the
            cheapest kernel; "logistic", "gaussian" and "bspline" are smooth
            (nonzero second derivatives) at 1.5-3x the time.
        spatial_dims: how many trailing dimensions make one image (2; 3 for
            volumes).

    Returns:
        source's shape and dtype, in reference's units; NaN pixels stay NaN.

    Examples:
        >>> source = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
        >>> reference = torch.tensor([[10.0, 10.0], [20.0, 40.0]])
        >>> # quantiles 1/4, 2/4, 3/4, 1 onto the reference's (2/4, 10), (3/4, 20), (1, 40)
        >>> softhist_ext.functional.match_histograms(source, reference, 41, -0.5, 40.5, kernel="hard")
        tensor([[10., 10.],
                [20., 40.]])
        >>> batch = torch.rand(2, 3, 32, 32, requires_grad=True)  # (B, C, H, W)
        >>> ref = torch.rand(3, 48, 48) * 255                     # one (C, H, W) reference
        >>> out = softhist_ext.functional.match_histograms(batch, ref)
        >>> out.shape
        torch.Size([2, 3, 32, 32])
        >>> out.mean().backward()
    """
    if not torch.jit.is_scripting():
        _checks.arguments("match_histograms", source=(source, "Tensor"), reference=(reference, "Tensor"),
                          spatial_dims=(spatial_dims, "int"))
        _lookup.check_types("match_histograms", bins, min, max, kappa, kernel)
    _lookup.check_image("match_histograms", "source", source, spatial_dims)
    _lookup.check_image("match_histograms", "reference", reference, spatial_dims)
    _lookup.check_common("match_histograms", bins, min, max, kappa)
    lead: List[int] = list(source.shape[: source.dim() - spatial_dims])
    lead_ref: List[int] = list(reference.shape[: reference.dim() - spatial_dims])
    broadcastable = len(lead_ref) <= len(lead)
    if broadcastable:
        k = len(lead) - len(lead_ref)
        for d in range(len(lead_ref)):
            if lead_ref[d] != 1 and lead_ref[d] != lead[k + d]:
                broadcastable = False
    if not broadcastable:
        raise ValueError(
            f"softhist: match_histograms' reference's leading dimensions {lead_ref} must "
            f"broadcast to source's {lead} (the dimensions before the last spatial_dims = "
            f"{spatial_dims}); pass one reference per source image and channel, or one to share"
        )
    x = _lookup.rows(source, spatial_dims)
    v, lo, hi, inside = _lookup.in_range(x, min, max)
    params, hist = _lookup.histograms(v, bins, lo, hi, kappa, kernel)
    u = _lookup.lookup(v if inside else _lookup.clamp(v, lo, hi), _lookup.cdf(hist), params, kernel)
    u = _lookup.clamp(u, 0.0, 1.0)

    r = _lookup.rows(reference, spatial_dims)
    # The reference's range per row, computed once: its bins' values below
    # are in the reference's units.
    r_lo, r_hi = _lookup.row_range(r, min, max)
    if min is None or max is None:
        params_r, hist_r = _lookup.histograms(to_unit(r, r_lo, r_hi), bins, 0.0, 1.0, kappa, kernel)
    else:
        params_r, hist_r = _lookup.histograms(r, bins, float(min), float(max), kappa, kernel)
    centres = (torch.arange(bins, dtype=r.dtype, device=r.device) + 0.5) / bins
    values = from_unit(centres, r_lo, r_hi)  # (*lead_ref, bins), reference units
    shape = lead + [bins]
    q = _lookup.cdf(hist_r).expand(shape).reshape(-1, bins)
    values = values.expand(shape).reshape(-1, bins)
    _check_reference_mass(hist_r.detach().sum(-1), min is not None)
    nonempty = (hist_r.detach() > 0).expand(shape).reshape(-1, bins)
    out = _inverse_cdf(u.reshape(q.shape[0], x.shape[-1]), q, values, nonempty).reshape(x.shape)
    if not inside:
        out = torch.where(torch.isnan(x), x.to(out.dtype), out)
    return out.reshape(source.shape).to(source.dtype)
