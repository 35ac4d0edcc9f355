"""Joint histograms of two axes with enough samples per row (at least 8 times
the moments of their pairs of pieces: about 50,000 pairs for the few bins
here, 512,000 for 32 x 32 bspline bins) take the CPU's Chebyshev moments of
both axes instead of their windows: against the dense reference, on data as
users have it, with weights, open ends, rows, a real image, non-finite
weights, and across the switch between the two."""

import math

import numpy as np
import pytest
import torch

import softhist_ext
from softhist_ext import reference

COMPACT = ["bspline", "triangular", "box"]
TOL = {torch.float64: 1e-10, torch.float32: 2e-5}
N = 64000  # >= 8 x the moments of (5 + 8) x (4 + 8) bspline pieces x 5 x 8 terms


def pairs(kind: str, n: int, dtype: torch.dtype, gen: torch.Generator):
    """Paired samples and the ranges a user would give for them."""
    if kind == "uint8":  # integer intensities, many samples on bin edges
        x = torch.randint(0, 256, (n,), generator=gen)
        y = (x + torch.randint(-20, 21, (n,), generator=gen)).clamp(0, 255)
        return x.to(dtype), y.to(dtype), (0.0, 0.0), (255.0, 255.0)
    if kind == "ct":  # Hounsfield units against an MR-like intensity
        x = torch.cat([torch.full((n // 4,), -1000.0, dtype=torch.float64),
                       torch.randn(n - n // 4, generator=gen, dtype=torch.float64) * 300 + 40])
        y = 2000 - 0.8 * x + torch.randn(n, generator=gen, dtype=torch.float64) * 50
        return x.to(dtype), y.to(dtype), (-1024.0, 0.0), (1000.0, 3000.0)
    x = torch.randn(n, generator=gen, dtype=torch.float64) * 1.2
    y = 0.5 * x + torch.randn(n, generator=gen, dtype=torch.float64)
    return x.to(dtype), y.to(dtype), (-2.0, -1.5), (2.0, 1.5)  # some pairs outside


@pytest.mark.parametrize("kernel", COMPACT)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("conserve_mass", [False, True])
@pytest.mark.parametrize("kind", ["randn", "uint8", "ct"])
def test_forward_and_gradients_match_dense_reference(kernel, dtype, conserve_mass, kind):
    gen = torch.Generator().manual_seed(hash((kernel, kind)) % 2**31)
    bins = (5, 4)
    x, y, lo, hi = pairs(kind, N, dtype, gen)
    w = (torch.rand(N, generator=gen, dtype=torch.float64) * 2 - 0.5).to(dtype)
    xr, yr, wr = (t.clone().requires_grad_() for t in (x, y, w))
    out = softhist_ext.histc2d(xr, yr, bins, lo, hi, None, kernel, wr, None, conserve_mass)
    xd, yd, wd = (t.double().clone().requires_grad_() for t in (x, y, w))
    kappa = tuple(reference.default_kappa_width(kernel) * bins[a] / (hi[a] - lo[a]) for a in range(2))
    expected = reference.histc2d(xd, yd, bins, lo, hi, kappa, kernel, wd, conserve_mass)
    tol = TOL[dtype]
    torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol * float(w.abs().sum()) / 20)
    g = torch.randn(bins, generator=gen, dtype=torch.float64)
    (out * g.to(dtype)).sum().backward()
    (expected * g).sum().backward()
    # float32 rounds a sample's place by ulp(x): its gradient by kappa^2 ulp(x).
    for got, want, a in ((xr.grad, xd.grad, 0), (yr.grad, yd.grad, 1)):
        ulp = float(torch.finfo(dtype).eps) * max(abs(lo[a]), abs(hi[a]))
        atol = (tol + 10 * kappa[a] * ulp) * kappa[a] * float(g.abs().max()) * 2
        torch.testing.assert_close(got.double(), want, rtol=tol, atol=atol)
    torch.testing.assert_close(wr.grad.double(), wd.grad, rtol=tol, atol=tol * 20)


@pytest.mark.parametrize("kernel", COMPACT)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_many_pairs_agree_with_their_parts(kernel, dtype):
    # The whole (moments) against the sum of small parts (windows), values
    # and gradients, in rows of a batch.
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(2, N, generator=gen, dtype=torch.float64) * 40 + 100).to(dtype)
    y = (255 - x.double() + torch.randn(2, N, generator=gen, dtype=torch.float64) * 30).to(dtype)
    xr = x.clone().requires_grad_()
    whole = softhist_ext.histc2d(xr, y, (6, 5), 0.0, 255.0, None, kernel, None, -1, True)
    g = torch.randn(whole.shape, generator=gen, dtype=torch.float64).to(dtype)
    (whole * g).sum().backward()
    for r in range(2):
        part_grads = []
        parts = 0
        for xp, yp in zip(x[r].split(4000), y[r].split(4000)):
            xp = xp.clone().requires_grad_()
            h = softhist_ext.histc2d(xp, yp, (6, 5), 0.0, 255.0, None, kernel, None, None, True)
            (h * g[r]).sum().backward()
            parts = parts + h.double()
            part_grads.append(xp.grad)
        torch.testing.assert_close(whole[r].double(), parts, rtol=TOL[dtype], atol=TOL[dtype] * 4000)
        grad = xr.grad[r].double()
        torch.testing.assert_close(grad, torch.cat(part_grads).double(), rtol=TOL[dtype],
                                   atol=TOL[dtype] * float(grad.abs().max()))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite_weight_takes_the_windows(bad):
    # No moment can carry a non-finite weight: then every pair takes its
    # windows, and the sample's bins alone are not finite.
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(N, generator=gen, dtype=torch.float64)
    y = torch.rand(N, generator=gen, dtype=torch.float64)
    w = torch.rand(N, generator=gen, dtype=torch.float64)
    w[4321] = bad
    out = softhist_ext.histc2d(x, y, (5, 4), 0.0, 1.0, None, "bspline", w)
    keep = torch.arange(N) != 4321
    rest = softhist_ext.histc2d(x[keep], y[keep], (5, 4), 0.0, 1.0, None, "bspline", w[keep])
    window = softhist_ext.histc2d(x[4321:4322], y[4321:4322], (5, 4), 0.0, 1.0, None, "bspline",
                                  w[4321:4322])
    reached = ~(window == 0)
    assert reached.any() and not torch.isfinite(out[reached]).any()
    torch.testing.assert_close(out[~reached], rest[~reached], rtol=1e-12, atol=1e-9)


def test_mutual_information_of_a_real_image_matches_dense_reference():
    # The camera against a brightened, noisy copy: MI and its gradient from
    # the dense joint histogram (each image's own range, open outer bins).
    skimage_data = pytest.importorskip("skimage.data")
    fixed = torch.from_numpy(np.asarray(skimage_data.camera(), dtype=np.float32))  # 512 x 512
    gen = torch.Generator().manual_seed(5)
    moving = (0.8 * fixed + 30 + 8 * torch.randn(fixed.shape, generator=gen)).clamp(0, 255)
    bins = 8  # >= 8 x (8 + 8)^2 pieces x 40 terms = 81,920 pairs: the moments
    m = moving.clone().requires_grad_()
    mi = softhist_ext.mutual_information(m[None, None], fixed[None, None], bins=bins)
    md = moving.double().clone().requires_grad_()
    xs, ys = md.flatten(), fixed.double().flatten()
    x_lo, x_hi = float(moving.min()), float(moving.max())
    y_lo, y_hi = float(ys.min()), float(ys.max())
    # Each image onto [0, 1] by its own range, the range a constant for autograd.
    xu = (xs - x_lo) / (x_hi - x_lo)
    yu = (ys - y_lo) / (y_hi - y_lo)
    kappa = reference.default_kappa_width("bspline") * bins
    joint = reference.histc2d(xu, yu, (bins, bins), (0.0, 0.0), (1.0, 1.0), (kappa, kappa),
                              "bspline", None, True)
    p = joint / joint.sum()
    px, py = p.sum(1), p.sum(0)

    def entropy(q):
        return -(q * q.clamp_min(1e-300).log()).sum()

    expected = entropy(px) + entropy(py) - entropy(p)
    torch.testing.assert_close(mi.double(), expected[None], rtol=2e-5, atol=1e-6)
    mi.sum().backward()
    expected.backward()
    torch.testing.assert_close(m.grad.double(), md.grad, rtol=2e-4,
                               atol=2e-4 * float(md.grad.abs().max()))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_pairs_match_dense_reference(dtype):
    # 16-bit samples take the pieces in float32, their histogram in their own type.
    gen = torch.Generator().manual_seed(6)
    x = (torch.rand(N, generator=gen) * 255).to(dtype)
    y = (torch.rand(N, generator=gen) * 255).to(dtype)
    xr = x.clone().requires_grad_()
    out = softhist_ext.histc2d(xr, y, (5, 4), 0.0, 255.0, None, "bspline")
    xd = x.double().requires_grad_()
    kappa = (reference.default_kappa_width("bspline") * 5 / 255, reference.default_kappa_width("bspline") * 4 / 255)
    expected = reference.histc2d(xd, y.double(), (5, 4), (0.0, 0.0), (255.0, 255.0), kappa, "bspline")
    eps = float(torch.finfo(dtype).eps)
    torch.testing.assert_close(out.double(), expected, rtol=eps, atol=0)
    g = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    (out * g.to(dtype)).sum().backward()
    (expected * g).sum().backward()
    torch.testing.assert_close(xr.grad.double(), xd.grad, rtol=eps, atol=eps * float(xd.grad.abs().max()))
