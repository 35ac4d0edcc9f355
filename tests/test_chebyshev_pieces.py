"""With enough samples per row (a few thousand here), the logistic and
gaussian kernels, and over even bins whose pieces' ends hold their knots the
triangular and bspline, take the CPU's Chebyshev moments instead of their windows:
against the dense reference, on data as users have it, with weights, open
ends, rows, non-finite weights, and across the switch between the two."""

import math

import numpy as np
import pytest
import torch

import softhist_ext
from softhist_ext import reference

SMOOTH = ["logistic", "gaussian"]
KERNELS = SMOOTH + ["triangular", "bspline"]  # (the box keeps its windows)
TOL = {torch.float64: 1e-10, torch.float32: 2e-5}


def data(kind: str, n: int, dtype: torch.dtype, gen: torch.Generator):
    """Samples and the range a user would give for them."""
    if kind == "ct":  # Hounsfield units: air, soft tissue, bone
        x = torch.cat([torch.full((n // 4,), -1000.0), torch.randn(n // 2, generator=gen) * 60 + 40,
                       torch.rand(n - n // 4 - n // 2, generator=gen) * 2000 + 300])
        return x.to(dtype), -1024.0, 3071.0
    if kind == "uint8":  # integer intensities, many samples on bin edges
        return torch.randint(0, 256, (n,), generator=gen).to(dtype), 0.0, 255.0
    if kind == "far":  # a range far from 0, narrower than float32's spacing there is coarse
        return (1e6 + torch.rand(n, generator=gen, dtype=torch.float64)).to(dtype), 1e6, 1e6 + 1
    return (torch.randn(n, generator=gen, dtype=torch.float64) * 1.5).to(dtype), -3.0, 3.0


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kappa_width", [None, 0.5, 1.0, 1.3, 2.0, 8.0])
@pytest.mark.parametrize("conserve_mass", [False, True])
@pytest.mark.parametrize("kind", ["randn", "ct", "uint8", "far"])
def test_forward_and_gradients_match_dense_reference(kernel, dtype, kappa_width, conserve_mass,
                                                     kind):
    gen = torch.Generator().manual_seed(hash((kernel, kind, kappa_width)) % 2**31)
    bins = 16
    x, lo, hi = data(kind, 8000, dtype, gen)
    if kind == "far" and dtype == torch.float32:
        x, lo, hi = x.double().to(dtype), 1e6, 1e6 + 64  # float32 spacing at 1e6 is 1/16
        x = (x + torch.rand(len(x), generator=gen) * 64).to(dtype)
    w = torch.rand(len(x), generator=gen, dtype=torch.float64).to(dtype) * 2 - 0.5
    kappa = None if kappa_width is None else kappa_width * bins / (hi - lo)
    xr = x.clone().requires_grad_()
    wr = w.clone().requires_grad_()
    out = softhist_ext.histc(xr, bins, lo, hi, kappa, kernel=kernel, weight=wr,
                             conserve_mass=conserve_mass)
    xd = x.double().clone().requires_grad_()
    wd = w.double().clone().requires_grad_()
    expected = reference.histc(xd, bins, lo, hi, kappa, kernel, wd, conserve_mass=conserve_mass)
    tol = TOL[dtype]
    scale = float(w.abs().sum())
    torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol * scale / bins)
    g = torch.randn(bins, generator=gen, dtype=torch.float64)
    (out * g.to(dtype)).sum().backward()
    (expected * g).sum().backward()
    # A sample's gradient is the kernel's density summed over bins: kappa times
    # O(1), and float32 rounds the sample's place by kappa * ulp(x).
    kap = kappa if kappa is not None else reference.default_kappa_width(kernel) * bins / (hi - lo)
    ulp = float(torch.finfo(dtype).eps) * max(abs(lo), abs(hi))
    gtol = (tol + kap * ulp) * kap
    torch.testing.assert_close(xr.grad.double(), xd.grad, rtol=tol, atol=gtol * 10)
    torch.testing.assert_close(wr.grad.double(), wd.grad, rtol=tol, atol=tol + 4 * kap * ulp)


@pytest.mark.parametrize("kernel", KERNELS)
def test_rows_match_one_histogram_per_row(kernel):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 2, 9000, generator=gen, dtype=torch.float64) * 255
    out = softhist_ext.histc(x, 32, 0.0, 255.0, kernel=kernel, dim=-1)
    for i in range(3):
        for j in range(2):
            torch.testing.assert_close(out[i, j], reference.histc(x[i, j], 32, 0.0, 255.0, None, kernel),
                                       rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rows_gradients_match_one_histogram_per_row(kernel, dtype):
    # 5 rows of 2 blocks of the backward's samples (8,192 each), so that
    # threads that split the blocks evenly split a row too: each task makes
    # the coefficients of the rows it reads.
    gen = torch.Generator().manual_seed(4)
    x = (torch.rand(5, 9000, generator=gen, dtype=torch.float64) * 255).to(dtype)
    g = torch.randn(5, 32, generator=gen, dtype=torch.float64)
    xr = x.clone().requires_grad_()
    (softhist_ext.histc(xr, 32, 0.0, 255.0, kernel=kernel, dim=-1) * g.to(dtype)).sum().backward()
    tol = TOL[dtype]
    for i in range(5):
        xd = x[i].double().clone().requires_grad_()
        (reference.histc(xd, 32, 0.0, 255.0, None, kernel) * g[i]).sum().backward()
        kap = reference.default_kappa_width(kernel) * 32 / 255.0
        atol = (tol + kap * float(torch.finfo(dtype).eps) * 255) * kap * 10
        torch.testing.assert_close(xr.grad[i].double(), xd.grad, rtol=tol, atol=atol)


def test_a_real_image_matches_dense_reference():
    skimage_data = pytest.importorskip("skimage.data")
    img = torch.from_numpy(np.asarray(skimage_data.camera()[::4, ::4], dtype=np.float32))
    x = img.flatten().requires_grad_()
    out = softhist_ext.histc(x, 64, 0.0, 255.0)
    xd = img.flatten().double().requires_grad_()
    expected = reference.histc(xd, 64, 0.0, 255.0, None, "logistic")
    torch.testing.assert_close(out.double(), expected, rtol=2e-5, atol=2e-5 * len(x) / 64)
    g = torch.linspace(-1, 1, 64, dtype=torch.float64)
    (out * g.float()).sum().backward()
    (expected * g).sum().backward()
    torch.testing.assert_close(x.grad.double(), xd.grad, rtol=2e-5, atol=1e-5 * xd.grad.abs().max())


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_weight_reaches_its_window_as_the_windows_do(kernel, bad):
    # Moments cannot carry a non-finite weight: its block of samples is added
    # by its windows, so the result is the windows' everywhere.
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(8000, generator=gen, dtype=torch.float64)
    w = torch.rand(8000, generator=gen, dtype=torch.float64)
    w[4321] = bad
    out = softhist_ext.histc(x, 16, 0.0, 1.0, kernel=kernel, weight=w)
    keep = torch.arange(8000) != 4321
    rest = reference.histc(x[keep], 16, 0.0, 1.0, None, kernel, w[keep])
    mass = reference.histc(x[4321:4322], 16, 0.0, 1.0, None, kernel)
    window = softhist_ext.histc(x[4321:4322], 16, 0.0, 1.0, kernel=kernel, weight=w[4321:4322])
    reached = ~(window == 0)  # the bins the windows give the sample: NaN or +-inf
    assert reached[mass > 1e-6].all() and not torch.isfinite(window[reached]).any()
    torch.testing.assert_close(out[reached], window[reached], equal_nan=True)
    torch.testing.assert_close(out[~reached], rest[~reached], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_many_samples_agree_with_their_parts(kernel, dtype):
    # The whole (moments) against the sum of small parts (windows).
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(12000, generator=gen, dtype=torch.float64) * 40 + 100).to(dtype)
    whole = softhist_ext.histc(x, 24, 0.0, 255.0, kernel=kernel)
    parts = sum(softhist_ext.histc(p, 24, 0.0, 255.0, kernel=kernel) for p in x.split(500))
    torch.testing.assert_close(whole.double(), parts.double(), rtol=TOL[dtype],
                               atol=TOL[dtype] * 500)


@pytest.mark.parametrize("kernel", SMOOTH)
@pytest.mark.parametrize("kappa_width", [None, 0.5, 2.0, 8.0])
@pytest.mark.parametrize("conserve_mass", [False, True])
@pytest.mark.parametrize("kind", ["randn", "ct", "far"])
def test_fine_pieces_match_dense_reference(kernel, kappa_width, conserve_mass, kind):
    # float64 rows of 8 chunks of 4 fine grids of samples or more (here
    # 600,000 over 8 bins) take fine pieces, 8 terms each: every kappa's
    # worst piece, weighted, at tight tolerances.
    gen = torch.Generator().manual_seed(hash((kernel, kind, kappa_width)) % 2**31)
    bins = 8
    x, lo, hi = data(kind, 600_000, torch.float64, gen)
    w = torch.rand(len(x), generator=gen, dtype=torch.float64) * 2 - 0.5
    kappa = None if kappa_width is None else kappa_width * bins / (hi - lo)
    got, expected = [], []
    for f, out in [(softhist_ext.histc, got), (reference.histc, expected)]:
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        h = f(xr, bins, lo, hi, kappa, kernel=kernel, weight=wr, conserve_mass=conserve_mass)
        g = torch.linspace(-1, 1, bins, dtype=torch.float64)
        out += [h.detach(), *torch.autograd.grad((h * g).sum(), [xr, wr])]
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12 * float(b.abs().max()))


@pytest.mark.parametrize("kernel", SMOOTH)
def test_fine_pieces_rows_match_one_histogram_per_row(kernel):
    gen = torch.Generator().manual_seed(5)
    x = (torch.rand(3, 600_000, generator=gen, dtype=torch.float64) * 255).requires_grad_()
    g = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    out = softhist_ext.histc(x, 8, 0.0, 255.0, kernel=kernel, dim=-1)
    (grad,) = torch.autograd.grad((out * g).sum(), x)
    for i in range(3):
        xi = x[i].detach().clone().requires_grad_()
        expected = reference.histc(xi, 8, 0.0, 255.0, None, kernel)
        (expected_grad,) = torch.autograd.grad((expected * g[i]).sum(), xi)
        torch.testing.assert_close(out[i], expected, rtol=1e-12, atol=1e-9)
        torch.testing.assert_close(grad[i], expected_grad, rtol=1e-12, atol=1e-14)


def _edges(lo, hi, bins):
    return lo + (hi - lo) * torch.arange(bins + 1, dtype=torch.float64) / bins


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", ["range", "range, conserve_mass", "even edges"])
def test_range_kappa_and_edges_gradients_match_dense_reference(kernel, dtype, case):
    # The one pass of the range's, kappa's (and even edges') gradients, and
    # its edge sums, as Chebyshev pieces.
    gen = torch.Generator().manual_seed(4)
    bins = 16
    explicit, conserve_mass = case == "even edges", case.endswith("conserve_mass")
    x = (torch.randn(8000, generator=gen, dtype=torch.float64) * 60 + 100).to(dtype)
    w = torch.rand(8000, generator=gen, dtype=torch.float64).to(dtype)
    lo = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    hi = torch.tensor(255.0, dtype=torch.float64, requires_grad=True)
    kappa = torch.tensor(3.0 * bins / 255.0, dtype=torch.float64, requires_grad=True)
    xr = x.clone().requires_grad_()
    if explicit:
        edges = _edges(lo.detach(), hi.detach(), bins).to(dtype).requires_grad_()
        out = softhist_ext.histogram(xr, edges, weight=w, kappa=kappa, kernel=kernel).hist
        params = [edges, kappa]
        dense_edges = edges.double()
    else:
        out = softhist_ext.histc(xr, bins, lo, hi, kappa, kernel=kernel, weight=w,
                                 conserve_mass=conserve_mass)
        params = [lo, hi, kappa]
        dense_edges = _edges(lo, hi, bins)
    xd = x.double().clone().requires_grad_()
    dense = reference.histogram_edges(xd, dense_edges, kappa, kernel, w.double(), conserve_mass)
    g = torch.randn(bins, generator=gen, dtype=torch.float64)
    ours = torch.autograd.grad(out, [xr, *params], g.to(dtype))
    expected = torch.autograd.grad(dense, [xd, *params], g)
    tol = TOL[dtype] * 10
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a.double(), b.double(), rtol=tol, atol=tol * b.abs().max())
    assert all(float(t.abs().max()) > 1e-3 for t in ours[1:])  # the test can fail


@pytest.mark.parametrize("kernel", SMOOTH)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_uneven_edges_match_dense_reference(kernel, dtype, weighted):
    # Pieces of the range's even bins, a table per uneven bin and edge: the
    # forward, the samples' and the edges' and kappa's gradients.
    gen = torch.Generator().manual_seed(5)
    widths = torch.rand(16, generator=gen, dtype=torch.float64) * 9 + 1
    edges = -1000.0 + 3000.0 * torch.cat([torch.zeros(1), widths.cumsum(0)]) / widths.sum()
    x = (torch.randn(30000, generator=gen, dtype=torch.float64) * 600 + 300).to(dtype)
    w = torch.rand(30000, generator=gen, dtype=torch.float64).to(dtype) if weighted else None
    kappa = torch.tensor(16 * 3.0 / 3000.0, dtype=torch.float64, requires_grad=True)
    e = edges.to(dtype).requires_grad_()
    xr = x.clone().requires_grad_()
    out = softhist_ext.histogram(xr, e, weight=w, kappa=kappa, kernel=kernel).hist
    xd = x.double().clone().requires_grad_()
    dense = reference.histogram_edges(xd, e.double(), kappa, kernel,
                                      None if w is None else w.double())
    tol = TOL[dtype]
    torch.testing.assert_close(out.double(), dense.detach(), rtol=tol, atol=tol * len(x) / 16)
    g = torch.randn(16, generator=gen, dtype=torch.float64)
    ours = torch.autograd.grad(out, [xr, e, kappa], g.to(dtype))
    expected = torch.autograd.grad(dense, [xd, e, kappa], g)
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a.double(), b.double(), rtol=tol * 10,
                                   atol=tol * 10 * b.abs().max())
