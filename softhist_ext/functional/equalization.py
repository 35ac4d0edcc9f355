"""Differentiable histogram equalisation."""

from typing import Optional

import torch
from torch import Tensor

from .. import _checks
from . import _lookup


def equalize(
    image: Tensor,
    bins: int = 256,
    min: Optional[float] = None,
    max: Optional[float] = None,
    kappa: Optional[float] = None,
    kernel: str = "box",
    spatial_dims: int = 2,
) -> Tensor:
    """Differentiable histogram equalisation, per image and channel.

    Each pixel becomes the soft CDF of its value in its own image-channel's
    histogram h (histc's soft histogram, open outer bins):

        C[b] = (h[0] + ... + h[b]) / (h[0] + ... + h[bins-1])
        out_i = sum_b C[b] * mass(x_i, b)

    where mass(x, b) is the kernel mass of x in bin b (the weights the
    histogram is made of; with the default box kernel, the linear
    interpolation weights of the two nearest bin centres, so out_i is C
    interpolated linearly between bin centres, as skimage does). The lookup
    is one gather over C per row: no
    pixels x bins tensor. Gradients flow through the histogram (C) and
    through each pixel's own lookup. The output is in [0, 1].

    Hard limit (kernel="hard", or kappa large): out_i = C[bin(x_i)], the
    inclusive CDF of the pixel's bin, as skimage.exposure.equalize_hist. For
    images of an integer dtype (given to skimage as such) with bins centred
    on the integers (256 bins over [-0.5, 255.5] for 8-bit values) the two
    are equal; on float images skimage interpolates C linearly between bin
    centres (np.interp) where this is a step per bin, so they differ by at
    most one bin's share of the pixels.
    kornia.enhance.equalize follows PIL instead (an exclusive CDF scaled
    without the last level's pixels, rounded to 8 bits): it differs by up to
    the pixel's own bin's share plus 1/255.

    Args:
        image: float image (any range), (*lead, *spatial): the histograms are
            over the last spatial_dims dimensions, the dimensions before them
            are independent images and channels, e.g. (H, W), (C, H, W),
            (B, C, H, W).
        bins: number of bins, at least 1.
        min, max: a fixed range for every image and channel (both or
            neither). None: each image-channel's own range of finite values,
            a constant for autograd, so 0..1, 0..255 and CT units need no
            rescaling. Values beyond a fixed range take the lookup of the
            nearest end, min or max: the CDF of the first or last bin (the
            hard and box kernels), blended with its neighbour's (smooth ones).
        kappa: inverse kernel scale in 1/units of image, as in histc; only
            with min and max. None sets it from the bin width.
        kernel: a smoothing kernel of softhist_ext.KERNELS, or "hard".
            Default "box": linear binning, so each lookup interpolates C
            linearly between bin centres (skimage's np.interp), and the
            cheapest kernel; "logistic", "gaussian" and "bspline" are smooth
            (nonzero second derivatives) at 1.5-3x the time.
        spatial_dims: how many trailing dimensions make one image (2; 3 for
            volumes).

    Returns:
        image's shape and dtype, in [0, 1]; NaN pixels stay NaN (they count in
        no histogram), +-inf map to the CDF's ends.

    Examples:
        >>> image = torch.tensor([[0.0, 10.0], [10.0, 30.0]])
        >>> softhist_ext.functional.equalize(image, bins=4, kernel="hard")
        tensor([[0.2500, 0.7500],
                [0.7500, 1.0000]])
        >>> batch = torch.rand(2, 3, 32, 32, requires_grad=True) * 255  # (B, C, H, W)
        >>> out = softhist_ext.functional.equalize(batch)
        >>> out.shape, bool(out.min() >= 0), bool(out.max() <= 1)
        (torch.Size([2, 3, 32, 32]), True, True)
        >>> out.mean().backward()
    """
    if not torch.jit.is_scripting():
        _checks.arguments("equalize", image=(image, "Tensor"), spatial_dims=(spatial_dims, "int"))
        _lookup.check_types("equalize", bins, min, max, kappa, kernel)
    _lookup.check_image("equalize", "image", image, spatial_dims)
    _lookup.check_common("equalize", bins, min, max, kappa)
    x = _lookup.rows(image, spatial_dims)
    v, lo, hi, inside = _lookup.in_range(x, min, max)
    params, hist = _lookup.histograms(v, bins, lo, hi, kappa, kernel)
    out = _lookup.lookup(v if inside else _lookup.clamp(v, lo, hi), _lookup.cdf(hist), params, kernel)
    out = _lookup.clamp(out, 0.0, 1.0)
    if not inside:
        out = torch.where(torch.isnan(x), x, out)
    return out.reshape(image.shape).to(image.dtype)
