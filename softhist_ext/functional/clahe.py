"""Differentiable contrast-limited adaptive histogram equalisation (CLAHE)."""

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _checks
from .._ranges import compute_dtype
from ..ops import _tensor_row
from . import _lookup


def _tile_weights(size: int, like: Tensor) -> Tensor:
    """The weight of the next tile's mapping for the `size` pixels between
    two tile centres (the centre of a tile of `size` pixels is at
    (size - 1) / 2 from its first pixel)."""
    offset = 0.5 if size % 2 == 0 else 0.0
    return (torch.arange(size, dtype=like.dtype, device=like.device) + offset) / size


def _neighbours(n: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    """For each of the n + 1 cells between tile centres along one axis (the
    first and last reaching the image's edge), the tiles before and after it,
    clamped to the grid."""
    cells = torch.arange(n + 1, device=device)
    return (cells - 1).clamp(0, n - 1), cells.clamp(0, n - 1)


def _check_grid_type(grid_size: object) -> None:
    if not (isinstance(grid_size, (tuple, list)) and len(grid_size) == 2
            and all(_checks.is_int(g) for g in grid_size)):
        raise TypeError(
            f"softhist: equalize_clahe's grid_size must be a pair of ints (tiles along H "
            f"and W), got {grid_size!r}"
        )


def _box_blend(v: Tensor, table: Tensor, params: Tensor, th: int, tw: int) -> Tensor:
    """sum_t w_t(i) * sum_b C_t[b] * mass(v_i, b) for the box kernel, as one
    three-axis gather: along rows and columns, bins a tile wide centred on
    the tile centres, with open ends, give each pixel's box-kernel masses
    the bilinear weights of the tile centres around it (clamped at the
    border). v (count, H, W), table (count, gh, gw, bins)."""
    count, height, width = v.shape[0], v.shape[1], v.shape[2]
    gh, gw = table.shape[1], table.shape[2]
    rows = torch.arange(height, dtype=v.dtype, device=v.device)[:, None].expand(height, width)
    cols = torch.arange(width, dtype=v.dtype, device=v.device)[None, :].expand(height, width)
    rows = rows.reshape(1, -1).expand(count, -1)
    cols = cols.reshape(1, -1).expand(count, -1)
    # Pixel p's centre is at p; the tiles span [-0.5, g * t - 0.5]: rows of
    # tensors, whose values (the image's size) torch.compile then doesn't
    # specialise on.
    spatial = torch.stack([
        _tensor_row(rows, gh, -0.5, gh * th - 0.5, None, "box", True),
        _tensor_row(cols, gw, -0.5, gw * tw - 0.5, None, "box", True),
    ])
    out = torch.ops.softhist.gather([v.reshape(count, -1), rows, cols], table.permute(0, 3, 1, 2),
                                    torch.cat([params, spatial]), [0, 0, 0], "box")
    return out.reshape(count, height, width)


def equalize_clahe(
    image: Tensor,
    clip_limit: float = 40.0,
    grid_size: Tuple[int, int] = (8, 8),
    bins: int = 256,
    min: Optional[float] = None,
    max: Optional[float] = None,
    kappa: Optional[float] = None,
    kernel: str = "box",
) -> Tensor:
    """Differentiable CLAHE (contrast-limited adaptive histogram equalisation).

    The image is cut into grid_size[0] x grid_size[1] tiles of
    th x tw = ceil(H / grid_size[0]) x ceil(W / grid_size[1]) pixels (the
    last rows and columns reflect-padded where the grid does not divide the
    image, as kornia and OpenCV do). Each tile t gets a soft histogram h_t
    (all tiles of all images and channels in one fused call), clipped at

        limit = max(floor(clip_limit * th * tw / bins), 1)

    (kornia's and OpenCV's convention) with the excess spread evenly over the
    bins, h'_t = min(h_t, limit) + sum_b relu(h_t[b] - limit) / bins, and its
    CDF C_t[b] = (h'_t[0] + ... + h'_t[b]) / sum h'_t. A pixel blends the
    mappings of the four tiles whose centres surround it bilinearly (weights
    w_t from its distance to the tile centres, in steps of 1 / tile size;
    tiles clamped at the border):

        out_i = sum_t w_t(i) * sum_b C_t[b] * mass(x_i, b)

    The four lookups of all pixels are one gather (rows: the cells between
    tile centres x their four tiles): memory O(pixels + tiles x bins), no
    pixels x bins tensor and no loop over tiles. With the default box kernel
    the bilinear weights are themselves box-kernel masses (linear binning
    over the tile centres), so lookups and blend are one three-axis gather
    (intensity, row, column) over the tiles' CDFs, at about half the time. Gradients flow through
    the tile histograms (clipping included) and each pixel's lookups.

    Hard limit (kernel="hard"): kornia.enhance.equalize_clahe's, for an
    image in [0, 1] with bins=256, min=0 and max=256/255 (kornia's 8-bit
    levels, floor(x * 255); for float32 images, levels k / 255 lie on or just
    below edge k, which this bins below and kornia's float32 floor rounds up,
    so compare on float64 images or levels off the edges), up to two
    documented differences: kornia rounds
    each tile's mapping to 8 bits (up to 0.5/255) and spreads the excess's
    remainder r (below bins) OpenCV's way, one count on every bins // r
    bins, where here the whole excess is spread evenly: up to r (1 - r / bins)
    <= bins / 4 counts of the tile's th * tw pixels apart in its CDF (0.016 for
    tiles of 64 x 64 pixels and 256 bins). skimage.exposure.equalize_adapthist differs more: its clip_limit
    is a fraction of the tile's pixels (clip_limit * bins here), it clips
    iteratively, works on 14-bit levels, pads symmetrically around the image
    and rescales its output to [0, 1].

    Args:
        image: float image (*lead, H, W), any range: each image and channel
            (the lead dimensions) is equalised on its own, all in one call.
        clip_limit: the contrast limit, in multiples of a uniform histogram's
            bin count (kornia's); 0 (or inf) disables clipping (adaptive
            histogram equalisation).
        grid_size: tiles along H and W, each at most the image's size there.
        bins: number of bins, at least 1.
        min, max: a fixed range (both or neither); None: each image and
            channel's own range of finite values, a constant for autograd.
        kappa: inverse kernel scale in 1/units of image; only with min and
            max. None sets it from the bin width.
        kernel: a smoothing kernel of softhist_ext.KERNELS, or "hard".
            Default "box": linear binning, so each lookup interpolates C
            linearly between bin centres (skimage's np.interp), and the
            cheapest kernel; "logistic", "gaussian" and "bspline" are smooth
            (nonzero second derivatives) at 1.5-3x the time.

    Returns:
        image's shape and dtype, in [0, 1]; NaN pixels stay NaN.

    Examples:
        >>> image = torch.rand(2, 3, 64, 48, requires_grad=True) * 255  # (B, C, H, W)
        >>> out = softhist_ext.functional.equalize_clahe(image, clip_limit=4.0, grid_size=(4, 4))
        >>> out.shape, bool(out.min() >= 0), bool(out.max() <= 1)
        (torch.Size([2, 3, 64, 48]), True, True)
        >>> out.mean().backward()
    """
    if not torch.jit.is_scripting():
        _checks.arguments("equalize_clahe", image=(image, "Tensor"), clip_limit=(clip_limit, "constant"))
        _lookup.check_types("equalize_clahe", bins, min, max, kappa, kernel)
        _check_grid_type(grid_size)
    _lookup.check_image("equalize_clahe", "image", image, 2)
    _lookup.check_common("equalize_clahe", bins, min, max, kappa)
    if not clip_limit >= 0.0:
        raise ValueError(f"softhist: equalize_clahe's clip_limit must be >= 0 (0 or inf: no clipping), got {clip_limit}")
    gh, gw = int(grid_size[0]), int(grid_size[1])
    height, width = image.shape[-2], image.shape[-1]
    if gh < 1 or gw < 1 or gh > height or gw > width:
        raise ValueError(
            f"softhist: equalize_clahe's grid_size must be between (1, 1) and the image's size "
            f"({height}, {width}), got ({gh}, {gw}); use fewer tiles or a larger image"
        )
    lead: List[int] = list(image.shape[:-2])
    count = 1
    for s in lead:
        count *= s
    if count == 0:
        return image.clone()
    x = image.to(compute_dtype(image)).reshape([count, height * width])
    v, lo, hi, inside = _lookup.in_range(x, min, max)
    v = v.reshape([count, height, width])
    pixels = v
    th, tw = (height + gh - 1) // gh, (width + gw - 1) // gw
    pad_h, pad_w = th * gh - height, tw * gw - width
    v = F.pad(v, [0, pad_w, 0, pad_h], mode="reflect")  # (unconditional: no guard on the size)
    # Tiles as rows: (images x channels, gh, gw, th * tw), one histogram each.
    tiles = v.reshape(count, gh, th, gw, tw).permute(0, 1, 3, 2, 4).reshape(count, gh, gw, th * tw)
    params, hist = _lookup.histograms(tiles, bins, lo, hi, kappa, kernel)
    if 0.0 < clip_limit < float("inf"):
        # floor(clip_limit * th * tw / bins), at least 1: a tensor, which
        # torch.compile doesn't specialise on the image's size.
        limit = torch.full((), clip_limit * th * tw / bins, dtype=torch.float64, device=hist.device)
        clipped = torch.minimum(hist, limit.floor().clamp_min(1.0).to(hist.dtype))
        hist = clipped + (hist - clipped).sum(-1, keepdim=True) / bins
    table = _lookup.cdf(hist)
    if kernel == "box":
        out = _box_blend(pixels if inside else _lookup.clamp(pixels, lo, hi), table, params, th, tw)
    else:
        # Cells between tile centres, each th x tw pixels once the image is padded
        # by half a tile on each side: cell (i, j) blends tiles i - 1, i (rows) and
        # j - 1, j (columns), clamped to the grid.
        i0, i1 = _neighbours(gh, image.device)
        j0, j1 = _neighbours(gw, image.device)
        rows_idx = torch.stack([i0, i0, i1, i1], -1)[:, None, :]
        cols_idx = torch.stack([j0, j1, j0, j1], -1)[None, :, :]
        tables = table[:, rows_idx, cols_idx]  # (count, gh + 1, gw + 1, 4, bins)
        top, left = th - th // 2, tw - tw // 2
        cells = F.pad(v if inside else _lookup.clamp(v, lo, hi), [left, tw // 2, top, th // 2])
        cells = cells.reshape(count, gh + 1, th, gw + 1, tw).permute(0, 1, 3, 2, 4)
        cells = cells.reshape(count, gh + 1, gw + 1, 1, th * tw).expand(count, gh + 1, gw + 1, 4, th * tw)
        looked = _lookup.lookup(cells, tables, params, kernel)
        wy = _tile_weights(th, looked)[:, None]
        wx = _tile_weights(tw, looked)[None, :]
        weights = torch.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx]).reshape(4, th * tw)
        out = (looked * weights).sum(-2)
        out = out.reshape(count, gh + 1, gw + 1, th, tw).permute(0, 1, 3, 2, 4)
        out = out.reshape(count, (gh + 1) * th, (gw + 1) * tw)[:, top:top + height, left:left + width]
    out = _lookup.clamp(out, 0.0, 1.0).reshape(x.shape)
    if not inside:
        out = torch.where(torch.isnan(x), x, out)
    return out.reshape(image.shape).to(image.dtype)
