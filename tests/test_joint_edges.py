"""Joint histograms (histogramdd, D = 2 and 3) with smooth kernels over
explicit, uneven edges per axis: values and gradients (for the samples, the
weights and the edges) against the dense formula (reference.histogramdd_edges),
even edges against the int bins, open ends, TorchScript, torch.compile and
the errors."""

import math

import pytest
import torch

import softhist_ext
from softhist_ext import reference

KERNELS = list(softhist_ext.KERNELS)
f64 = torch.float64


def _uneven_edges(bins, lo, hi, seed, dtype=f64):
    gen = torch.Generator().manual_seed(seed)
    widths = torch.rand(bins, generator=gen, dtype=f64) * 4 + 0.1  # widths 40x apart
    return (lo + (hi - lo) * torch.cat([torch.zeros(1, dtype=f64), widths.cumsum(0)])
            / widths.sum()).to(dtype)


def _joint(axes, n=1500, dtype=f64, seed=0):
    """Samples (n, axes) spread over [-3, 3]: NaN, inf and far out of range
    in the first rows; uneven edges of 7, 5, 9 bins."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, axes, generator=gen, dtype=f64) * 1.4).to(dtype)
    x[0, 0], x[1, -1], x[2, 0] = math.nan, math.inf, -40.0
    edges = [_uneven_edges(b, -3.0, 3.0, seed + a, dtype) for a, b in enumerate([7, 5, 9][:axes])]
    return x, edges


@pytest.mark.parametrize("axes", [2, 3])
@pytest.mark.parametrize("kernel", KERNELS)
def test_joint_uneven_edges_match_the_dense_formula_values_and_gradients(axes, kernel):
    x, edges = _joint(axes)
    x.requires_grad_()
    edges = [e.requires_grad_() for e in edges]
    w = torch.rand(x.shape[0], dtype=f64, requires_grad=True)
    kappa = [5.0, 3.0, 7.0][:axes]
    hist, returned = softhist_ext.histogramdd(x, edges, weight=w, kappa=kappa, kernel=kernel)
    assert all(r is e for r, e in zip(returned, edges))
    finite = torch.isfinite(x).all(-1)
    xs = torch.where(finite[:, None], x, torch.zeros_like(x))
    dense = reference.histogramdd_edges(list(xs.unbind(-1)), edges, kappa, kernel, w * finite)
    torch.testing.assert_close(hist, dense, rtol=1e-10, atol=1e-10)
    g = torch.randn(hist.shape, dtype=f64)
    ours = torch.autograd.grad(hist, [x, w, *edges], g)
    expected = torch.autograd.grad(dense, [x, w, *edges], g)
    torch.testing.assert_close(ours[0], expected[0] * finite[:, None], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ours[1], expected[1], rtol=1e-9, atol=1e-9)
    for a in range(axes):  # every edge of every axis, the end edges included
        torch.testing.assert_close(ours[2 + a], expected[2 + a], rtol=1e-9, atol=1e-9)
        assert (expected[2 + a].abs() > 1e-3).all()  # the test can fail


@pytest.mark.parametrize("kernel", KERNELS)
def test_joint_uneven_edges_gradcheck_and_gradgradcheck(kernel):
    x, edges = _joint(2, n=30)
    x = x[3:].clone().requires_grad_()  # finite samples
    w = torch.rand(x.shape[0], dtype=f64, requires_grad=True)
    ex, ey = (e.clone().requires_grad_() for e in edges)

    def f(x, w, ex, ey):
        return softhist_ext.histogramdd(x, [ex, ey], weight=w, kappa=[4.0, 2.5], kernel=kernel).hist

    assert torch.autograd.gradcheck(f, (x, w, ex, ey))
    assert torch.autograd.gradgradcheck(f, (x, w, ex, ey))


@pytest.mark.parametrize("kernel", KERNELS)
def test_joint_even_edges_equal_the_int_bins_and_kappa_none_follows_each_axis(kernel):
    x = torch.rand(4000, 3) * 255  # intensities, as images hold them
    edges = [torch.linspace(0.0, 255.0, b + 1) for b in (8, 6, 5)]
    given = softhist_ext.histogramdd(x, edges, kernel=kernel).hist
    counted = softhist_ext.histogramdd(x, [8, 6, 5], [0.0, 255.0] * 3, kernel=kernel).hist
    torch.testing.assert_close(given, counted, rtol=1e-5, atol=1e-3)
    # Uneven edges: kappa=None is each axis's default over its mean bin width.
    uneven = [_uneven_edges(b, 0.0, 255.0, b, torch.float32) for b in (8, 6, 5)]
    width_kappa = reference.default_kappa_width(kernel)
    kappa = [width_kappa * (e.numel() - 1) / float(e[-1] - e[0]) for e in uneven]
    ours = softhist_ext.histogramdd(x, uneven, kernel=kernel).hist
    dense = reference.histogramdd_edges(list(x.double().unbind(-1)), uneven, kappa, kernel)
    torch.testing.assert_close(ours, dense.float(), rtol=1e-4, atol=2e-3)
    assert ours.sum().item() == pytest.approx(dense.sum().item(), rel=1e-5)


def test_joint_uneven_edges_batched_rows_density_and_open_ends():
    x, edges = _joint(2, n=600)
    rows = torch.stack([x, x.flip(0) * 0.8])  # (2, N, 2), one histogram per row
    learned = [e.clone().requires_grad_() for e in edges]
    hist = softhist_ext.histogramdd(rows, learned, kappa=[6.0, 6.0], kernel="gaussian", dim=1).hist
    g = torch.randn(hist.shape, dtype=f64)
    expected = [torch.zeros_like(e) for e in edges]
    for r in range(2):
        finite = torch.isfinite(rows[r]).all(-1)
        xs = torch.where(finite[:, None], rows[r], torch.zeros_like(rows[r]))
        dense = reference.histogramdd_edges(list(xs.unbind(-1)), learned, [6.0, 6.0], "gaussian",
                                            finite.double())
        torch.testing.assert_close(hist[r], dense, rtol=1e-10, atol=1e-10)
        for e, d in zip(expected, torch.autograd.grad(dense, learned, g[r])):
            e += d
    # the edges' gradients sum over the rows
    for ours, e in zip(torch.autograd.grad(hist, learned, g), expected):
        torch.testing.assert_close(ours, e, rtol=1e-9, atol=1e-9)
    density = softhist_ext.histogramdd(x, edges, density=True, kernel="bspline").hist
    volume = edges[0].diff()[:, None] * edges[1].diff()
    assert (density * volume).sum().item() == pytest.approx(1.0, rel=1e-12)
    # Open ends: each sample inside the range keeps its whole mass.
    learned = [e.clone().requires_grad_() for e in edges]
    kept = softhist_ext.histogramdd(x, learned, kernel="logistic", conserve_mass=True).hist
    inside = ((x >= -3.0) & (x <= 3.0)).all(-1).sum().item()
    assert kept.sum().item() == pytest.approx(inside, rel=1e-12)
    finite = torch.isfinite(x).all(-1)
    xs = torch.where(finite[:, None], x, torch.zeros_like(x))
    width_kappa = reference.default_kappa_width("logistic")
    # (kappa=None follows the end edges, and so does its gradient)
    kappa = [width_kappa * (e.numel() - 1) / (e[-1] - e[0]) for e in learned]
    dense = reference.histogramdd_edges(list(xs.unbind(-1)), learned, kappa, "logistic",
                                        finite.double(), conserve_mass=True)
    torch.testing.assert_close(kept, dense, rtol=1e-10, atol=1e-10)
    g = torch.randn(kept.shape, dtype=f64)
    for ours, e in zip(torch.autograd.grad(kept, learned, g), torch.autograd.grad(dense, learned, g)):
        torch.testing.assert_close(ours, e, rtol=1e-9, atol=1e-9)


def test_joint_edges_torchscript_and_torch_compile():
    x, edges = _joint(2, n=400, dtype=torch.float32)
    expected = softhist_ext.histogramdd(x, edges, kernel="triangular").hist
    scripted = torch.jit.script(softhist_ext.histogramdd)
    got = scripted(x, edges, None, None, False, None, "triangular")
    assert torch.equal(got.hist, expected)

    def f(x):
        return softhist_ext.histogramdd(x, edges, kernel="triangular").hist

    torch.testing.assert_close(torch.compile(f, fullgraph=True)(x), expected)

    # The edges' gradients, scripted and compiled, as in eager mode.
    def loss(ex, ey):
        return softhist_ext.histogramdd(x, [ex, ey], kernel="triangular").hist.pow(2).sum()

    def learned():
        return [e.clone().requires_grad_() for e in edges]

    es = learned()
    eager = torch.autograd.grad(loss(*es), es)
    es = learned()
    hist = scripted(x, es, None, None, False, None, "triangular").hist
    torch.testing.assert_close(torch.autograd.grad(hist.pow(2).sum(), es), eager)
    es = learned()
    torch.testing.assert_close(torch.autograd.grad(torch.compile(loss, fullgraph=True)(*es), es), eager)


def test_joint_edges_errors_name_the_fix():
    x, edges = _joint(2, n=50)
    with pytest.raises(ValueError, match="strictly increasing"):
        softhist_ext.histogramdd(x, [edges[0], edges[1].flip(0)])
    # The op's own checks, as a direct caller of torch.ops.softhist.scatter meets them.
    row = torch.tensor([0.0, 0.0, 4.0, 0.0], dtype=f64)
    params = torch.stack([torch.cat([row, edges[1]]), torch.cat([row, edges[1]])])  # 6 edges each
    with pytest.raises(RuntimeError, match="most bins \\+ 1 = 8 edges per row"):
        torch.ops.softhist.scatter(list(x.unbind(-1)), None, params, [7, 5], [0, 0], "logistic")
    # An axis at its edges (the gradients' op): a smooth kernel, order >= 1, each axis once.
    ps = torch.stack([torch.cat([row, edges[0]]), torch.cat([row, edges[1], edges[1][-1:].expand(2)])])
    cs = list(x.unbind(-1))
    with pytest.raises(RuntimeError, match="order of at least 1, got order 0 on axis 1"):
        torch.ops.softhist.scatter(cs, None, ps, [7, 5], [1, 0], "logistic", [1])
    with pytest.raises(RuntimeError, match="edge_axes must list distinct axes in \\[0, 2\\), got 2"):
        torch.ops.softhist.scatter(cs, None, ps, [7, 5], [1, 1], "logistic", [2])
    with pytest.raises(RuntimeError, match="edge_axes must list distinct axes"):
        torch.ops.softhist.gather(cs, torch.zeros(8, 5, dtype=f64), ps, [1, 1], "logistic", [0, 0])
    # hist has bins + 1 slots on an axis at its edges: 8 x 5 is 7 bins by 5 bins there.
    out = torch.ops.softhist.gather(cs, torch.zeros(8, 5, dtype=f64), ps, [1, 0], "logistic", [0])
    assert out.shape == x.shape[:1]


@pytest.mark.parametrize("kernel", KERNELS)
def test_joint_range_and_kappa_as_tensors_get_their_gradients(kernel):
    # histogramdd's range and kappa, and histc2d's min, max and kappa, as 0-d
    # tensors: values and gradients against the dense formula.
    x, _ = _joint(2, n=500)
    x = x[3:].clone().requires_grad_()
    lo = [torch.tensor(v, dtype=f64, requires_grad=True) for v in (-2.5, -2.0)]
    hi = [torch.tensor(v, dtype=f64, requires_grad=True) for v in (2.0, 3.0)]
    k = [torch.tensor(v, dtype=f64, requires_grad=True) for v in (3.0, 4.5)]
    bins = [7, 5]
    edges = [lo[a] + (hi[a] - lo[a]) * torch.arange(b + 1, dtype=f64) / b for a, b in enumerate(bins)]
    dense = reference.histogramdd_edges(list(x.unbind(-1)), edges, k, kernel)
    hist, returned = softhist_ext.histogramdd(x, bins, [lo[0], hi[0], lo[1], hi[1]], kappa=k,
                                              kernel=kernel)
    joint = softhist_ext.histc2d(x[:, 0], x[:, 1], tuple(bins), (lo[0], lo[1]), (hi[0], hi[1]),
                                 (k[0], k[1]), kernel=kernel)
    g = torch.randn(dense.shape, dtype=f64)
    inputs = [x, *lo, *hi, *k]
    expected = torch.autograd.grad(dense, inputs, g, retain_graph=True)
    assert all(float(e.abs()) > 1e-3 for e in expected[1:])  # the test can fail
    for out in (hist, joint):
        torch.testing.assert_close(out, dense)
        for ours, e in zip(torch.autograd.grad(out, inputs, g, retain_graph=True), expected):
            torch.testing.assert_close(ours, e)
    # the returned edges follow the range
    torch.testing.assert_close(torch.autograd.grad(returned[1].sum(), hi[1])[0],
                               torch.tensor(3.0, dtype=f64))
    # kappa as tensors over explicit edges, and density
    ex = [_uneven_edges(b, -3.0, 3.0, b) for b in bins]
    hist = softhist_ext.histogramdd(x, ex, kappa=k, kernel=kernel, density=True).hist
    dense = reference.histogramdd_edges(list(x.unbind(-1)), ex, k, kernel)
    dense = dense / (dense.sum() * ex[0].diff()[:, None] * ex[1].diff())
    torch.testing.assert_close(hist, dense)
    torch.testing.assert_close(torch.autograd.grad(hist, k, g), torch.autograd.grad(dense, k, g))
    with pytest.raises(ValueError, match="hard kernel has no gradient with respect to the range"):
        softhist_ext.histogramdd(x, bins, [lo[0], hi[0], lo[1], hi[1]], kernel="hard")
