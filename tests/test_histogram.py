"""histogram against torch.histogram and numpy.histogram (hard kernel, even
and uneven edges), the dense reference (smooth kernels), and histogramdd's
hard kernel on samples that lie on its edges."""

import math

import numpy as np
import pytest
import torch

import softhist_ext
from softhist_ext import reference


def _samples(dtype, seed=0):
    """randn, plus values on the edges of [-2, 2] in 10 bins, outside it, and NaN."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3000, generator=gen, dtype=torch.float64) * 1.5
    on_edges = torch.linspace(-2, 2, 11, dtype=torch.float64)
    return torch.cat([x, on_edges, torch.tensor([-7.0, 9.0, math.nan], dtype=torch.float64)]).to(dtype)


def _uneven_edges(dtype, seed=1):
    gen = torch.Generator().manual_seed(seed)
    inner = torch.sort(torch.rand(14, generator=gen, dtype=torch.float64) * 5 - 2.5).values
    return torch.cat([torch.tensor([-3.0], dtype=torch.float64), inner, torch.tensor([3.0])]).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hard_kernel_equals_torch_histogram_with_even_bins(device, dtype):
    x = _samples(dtype)
    w = torch.rand(x.shape, dtype=dtype)
    for kwargs in (dict(bins=10, range=(-2.0, 2.0)), dict(bins=7, range=(-2.5, 1.0)),
                   dict(bins=10, range=(-2.0, 2.0), weight=w), dict(bins=13, range=(-2.0, 2.0), density=True),
                   # float32 edges 1e-3 apart near 1.5: widths rounded by up to 5e-5 of theirs
                   dict(bins=1000, range=(1.0, 2.0), density=True)):
        expected = torch.histogram(x, **kwargs)
        args = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        ours = softhist_ext.histogram(x.to(device), kernel="hard", **args)
        if "weight" in kwargs or "density" in kwargs:
            torch.testing.assert_close(ours.hist.cpu(), expected.hist, rtol=1e-12 if dtype == torch.float64 else 1e-5, atol=0)
        else:
            assert torch.equal(ours.hist.cpu(), expected.hist)
        assert torch.equal(ours.bin_edges.cpu(), expected.bin_edges)
    point = torch.histogram(x, 4, range=(0.5, 0.5))  # widened by 0.5 on each side, as torch
    ours = softhist_ext.histogram(x.to(device), 4, (0.5, 0.5), kernel="hard")
    assert torch.equal(ours.hist.cpu(), point.hist) and torch.equal(ours.bin_edges.cpu(), point.bin_edges)
    with pytest.raises(ValueError, match=r"histogram's range must have min <= max, got \[1.0, 0.0\]"):
        softhist_ext.histogram(x.to(device), 4, (1.0, 0.0))
    finite = x[torch.isfinite(x)]  # torch.histogram takes the range of all values, NaN included
    assert torch.equal(softhist_ext.histogram(finite.to(device), 9, kernel="hard").hist.cpu(),
                       torch.histogram(finite, 9).hist)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hard_kernel_equals_torch_and_numpy_with_uneven_edges(device, dtype):
    edges = _uneven_edges(dtype)
    x = torch.cat([_samples(dtype), edges])  # every edge is also a sample
    w = torch.randn(x.shape, dtype=dtype)
    ours = softhist_ext.histogram(x.to(device), edges.to(device), kernel="hard")
    assert torch.equal(ours.hist.cpu(), torch.histogram(x, edges).hist)
    assert ours.bin_edges is not None and torch.equal(ours.bin_edges.cpu(), edges)
    keep = torch.isfinite(x)  # numpy.histogram refuses NaN
    counts, _ = np.histogram(x[keep].numpy(), edges.numpy())
    assert np.array_equal(ours.hist.cpu().numpy(), counts.astype(ours.hist.cpu().numpy().dtype))
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-4)
    weighted = softhist_ext.histogram(x.to(device), edges.to(device), weight=w.to(device), kernel="hard").hist
    torch.testing.assert_close(weighted.cpu(), torch.histogram(x, edges, weight=w).hist, **tol)
    density = softhist_ext.histogram(x.to(device), edges.to(device), density=True, kernel="hard").hist
    torch.testing.assert_close(density.cpu(), torch.histogram(x, edges, density=True).hist, **tol)
    numpy_density, _ = np.histogram(x[keep].numpy(), edges.numpy(), density=True)
    np.testing.assert_allclose(density.cpu().numpy(), numpy_density, rtol=1e-5)


def test_hard_kernel_gives_weights_their_gradient_with_uneven_edges():
    edges = _uneven_edges(torch.float64)
    x = _samples(torch.float64)
    w = torch.rand(x.shape, dtype=torch.float64, requires_grad=True)
    g = torch.randn(edges.numel() - 1, dtype=torch.float64)
    (softhist_ext.histogram(x, edges, weight=w, kernel="hard").hist * g).sum().backward()
    bin_of = torch.bucketize(x, edges, right=True) - 1
    bin_of[x == edges[-1]] = edges.numel() - 2
    inside = (x >= edges[0]) & (x <= edges[-1])
    expected = torch.where(inside, g[bin_of.clamp(0, edges.numel() - 2)], torch.zeros_like(x))
    assert torch.equal(w.grad, expected)


@pytest.mark.parametrize("kernel", list(softhist_ext.KERNELS))
def test_smooth_kernels_match_dense_reference_and_histc(kernel):
    x = (torch.rand(2, 500, dtype=torch.float64) * 255).requires_grad_()  # 8-bit intensities
    w = torch.rand(2, 500, dtype=torch.float64)
    hist, edges = softhist_ext.histogram(x, 32, (0.0, 256.0), weight=w, kernel=kernel)
    expected = reference.histc(x.detach().reshape(-1), 32, 0.0, 256.0, None, kernel, w.reshape(-1))
    torch.testing.assert_close(hist, expected, rtol=1e-10, atol=1e-10)
    assert torch.equal(edges, torch.linspace(0, 256, 33, dtype=torch.float64))
    histc = softhist_ext.histc(x.reshape(-1), 32, 0.0, 256.0, kernel=kernel, weight=w.reshape(-1))
    g = torch.randn(32, dtype=torch.float64)
    (grad,) = torch.autograd.grad((hist * g).sum(), x)
    (grad_histc,) = torch.autograd.grad((histc * g).sum(), x)
    torch.testing.assert_close(grad, grad_histc, rtol=1e-12, atol=1e-12)
    assert grad.abs().sum() > 0


def _backward_nodes(t):
    """The names of the autograd nodes t's backward runs."""
    seen, todo = set(), [t.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(n for n, _ in node.next_functions)
    return {type(n).__name__ for n in seen}


def test_one_axis_gradient_reaches_the_input_without_a_copy():
    # histogram and histogramdd with one axis: the input's gradient is the
    # op's, through views; an unbind's backward would stack it into a copy.
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    edges = torch.linspace(-3, 3, 17, dtype=torch.float64)
    g = torch.randn(16, dtype=torch.float64)
    (expected,) = torch.autograd.grad((softhist_ext.histc(x, 16, -3.0, 3.0) * g).sum(), x)
    for hist in (softhist_ext.histogram(x, 16, range=(-3.0, 3.0)).hist,
                 softhist_ext.histogramdd(x[:, None], 16, [-3.0, 3.0]).hist,
                 softhist_ext.histogramdd(x[:, None], [edges]).hist):
        nodes = _backward_nodes(hist)
        assert not nodes & {"UnbindBackward0", "StackBackward0", "SelectBackward0"}, nodes
        (grad,) = torch.autograd.grad((hist * g).sum(), x)
        torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


def test_density_integrates_to_one():
    x = torch.randn(5000, dtype=torch.float64)
    hist, edges = softhist_ext.histogram(x, 40, (-3.0, 3.0), density=True, kernel="gaussian")
    assert abs(float((hist * (edges[1:] - edges[:-1])).sum()) - 1) < 1e-12


@pytest.mark.parametrize("axes", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_histogramdd_hard_kernel_bins_samples_on_edges_as_torch(axes, dtype):
    # Every 1/1000 on [0, 1] in 10 and 100 bins: samples on or within rounding
    # of an edge, where dividing by the bin width alone puts some in the bin below.
    line = torch.linspace(0, 1, 1001, dtype=dtype)
    x = torch.stack([line.roll(a * 37) for a in range(axes)], dim=-1)
    for bins in (10, 100):
        ours = softhist_ext.histogramdd(x, bins, [0.0, 1.0] * axes, kernel="hard").hist
        assert torch.equal(ours, torch.histogramdd(x, [bins] * axes, range=[0.0, 1.0] * axes).hist)


def test_hard_kernel_has_no_input_gradient():
    x = torch.rand(100, requires_grad=True)
    hist, _ = softhist_ext.histogram(x, 5, (0.0, 1.0), kernel="hard")
    with pytest.raises(RuntimeError, match="hard kernel .* no derivative with respect to the samples"):
        hist.sum().backward()


def test_hard_kernel_refuses_edges_that_require_grad():
    # They had been dropped from the graph without a word; under no_grad
    # (evaluating a learned layer's edges) they count as torch.histogram.
    x = torch.tensor([0.1, 0.4, 0.4, 0.9], dtype=torch.float64)
    edges = torch.tensor([0.0, 0.3, 0.5, 1.0], dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="histogram's hard kernel has no gradient with respect to its edges.*detach"):
        softhist_ext.histogram(x, edges, kernel="hard")
    with pytest.raises(ValueError, match="histogramdd's hard kernel has no gradient .*edges"):
        softhist_ext.histogramdd(x[:, None], [edges], kernel="hard")
    with torch.no_grad():
        ours = softhist_ext.histogram(x, edges, kernel="hard").hist
    assert torch.equal(ours, torch.histogram(x, edges.detach()).hist)
    assert torch.equal(softhist_ext.histogram(x, edges.detach(), kernel="hard").hist, ours)


def test_a_range_of_0d_tensors_that_need_no_gradient_is_taken_as_numbers():
    x = torch.rand(100, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lo, hi = x.min(), x.max()
    hist, edges = softhist_ext.histogram(x, 4, (lo, hi), kernel="hard")
    expected = torch.histogram(x, 4, range=(float(lo), float(hi)))
    assert torch.equal(hist, expected.hist) and torch.equal(edges, expected.bin_edges)


def test_bad_arguments_name_the_fix():
    x = torch.rand(10)
    edges = torch.tensor([0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        softhist_ext.histogram(x, torch.tensor([0.0, 0.5, 0.5, 1.0]), kernel="hard")
    with pytest.raises(ValueError, match="input's dtype"):
        softhist_ext.histogram(x, edges.double(), kernel="hard")
    with pytest.raises(ValueError, match="range only with bins as an int"):
        softhist_ext.histogram(x, edges, (0.0, 1.0), kernel="hard")
    with pytest.raises(ValueError, match="weight must have input's shape"):
        softhist_ext.histogram(x, 4, weight=torch.rand(9))
    for kernel in ("hard", "logistic"):  # (the hard kernel sums any weights in float64)
        with pytest.raises(ValueError, match=r"histogram's weight must have input's dtype.*weight.to"):
            softhist_ext.histogram(x, 4, weight=torch.rand(10, dtype=torch.float64), kernel=kernel)
        with pytest.raises(ValueError, match="histogramdd's weight must have input's dtype"):
            softhist_ext.histogramdd(x[:, None], 4, weight=torch.rand(10).bool(), kernel=kernel)
    with pytest.raises(ValueError, match=r"range must be \(min, max\)"):
        softhist_ext.histogram(x, 4, (0.0, 1.0, 2.0))
    with pytest.raises(TypeError, match="bins must be an int or a 1-d tensor of edges"):
        softhist_ext.histogram(x, 2.5)
    # Integer samples (which torch.histogram refuses too): integer counts would
    # truncate weights.
    for bad, bins in ((torch.arange(10), torch.arange(0, 11, 2)), (torch.arange(10), 4),
                      (torch.rand(10, dtype=torch.complex64), 4)):
        with pytest.raises(ValueError, match="histogram needs floating-point input.*input.float"):
            softhist_ext.histogram(bad, bins, weight=torch.full((10,), 0.3), kernel="hard")


def test_torchscript():
    scripted = torch.jit.script(softhist_ext.histogram)
    x = torch.randn(300, dtype=torch.float64)
    edges = _uneven_edges(torch.float64)
    for bins, kernel in ((12, "logistic"), (12, "hard"), (edges, "hard")):
        a = scripted(x, bins, None, None, False, None, kernel)
        b = softhist_ext.histogram(x, bins, kernel=kernel)
        assert torch.equal(a.hist, b.hist) and torch.equal(a.bin_edges, b.bin_edges)


@pytest.mark.parametrize("axes", [2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_histogramdd_with_edge_tensors_equals_torch_and_numpy(device, axes, dtype):
    # Uneven edges per axis, every edge also a sample on its axis, values out of
    # range and NaN; weights and density; a tuple of edges as torch takes it.
    edges = [_uneven_edges(dtype)[: 6 + 2 * a] for a in range(axes)]
    samples = _samples(dtype)
    x = torch.stack([torch.cat([edges[a].repeat(3), samples.roll(17 * a)])[: samples.numel()]
                     for a in range(axes)], dim=-1)
    w = torch.rand(x.shape[0], dtype=dtype)
    on_device = [e.to(device) for e in edges]
    ours = softhist_ext.histogramdd(x.to(device), tuple(on_device), kernel="hard")
    assert torch.equal(ours.hist.cpu(), torch.histogramdd(x, edges).hist)
    assert all(torch.equal(a.cpu(), b) for a, b in zip(ours.bin_edges, edges))
    keep = torch.isfinite(x).all(-1)
    counts, _ = np.histogramdd(x[keep].numpy(), [e.numpy() for e in edges])
    assert np.array_equal(ours.hist.cpu().numpy(), counts.astype(ours.hist.cpu().numpy().dtype))
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    for density in (False, True):
        got = softhist_ext.histogramdd(x.to(device), on_device, weight=w.to(device), density=density,
                                       kernel="hard").hist
        torch.testing.assert_close(got.cpu(), torch.histogramdd(x, edges, weight=w, density=density).hist,
                                   **tol)


def test_histogramdd_edge_tensors_errors_and_torchscript():
    x = torch.rand(50, 2, dtype=torch.float64)
    ex = torch.tensor([0.0, 0.2, 1.0], dtype=torch.float64)
    ey = torch.tensor([0.0, 0.7, 0.9, 1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="list of 2 tensors"):
        softhist_ext.histogramdd(x, [ex], kernel="hard")
    with pytest.raises(ValueError, match="range must be None when bins are given as edges"):
        softhist_ext.histogramdd(x, [ex, ey], [0.0, 1.0, 0.0, 1.0], kernel="hard")
    with pytest.raises(ValueError, match="histogramdd's edges must be finite and strictly increasing"):
        softhist_ext.histogramdd(x, [ex, ey.flip(0)], kernel="hard")
    with pytest.raises(TypeError, match="a list of 1-d tensors of edges"):
        softhist_ext.histogramdd(x, [ex, 3], kernel="hard")
    scripted = torch.jit.script(softhist_ext.histogramdd)
    for bins in ([ex, ey], [2, 3]):
        a = scripted(x, bins, None, None, True, None, "hard")
        b = torch.histogramdd(x, bins, density=True)
        torch.testing.assert_close(a.hist, b.hist, rtol=1e-12, atol=1e-12)


def test_a_point_range_is_widened_whatever_kappa_is():
    # With kappa (or the range elsewhere) a tensor, a point range had taken
    # the data's range, and returned edges all at the point.
    x = torch.tensor([0.1, 0.2, 0.9, 3.0], dtype=torch.float64)
    k = torch.tensor(6.0, dtype=torch.float64, requires_grad=True)
    expected = softhist_ext.histogram(x, 3, (0.0, 1.0), kappa=6.0)
    for kappa in [6.0, k]:
        hist, edges = softhist_ext.histogram(x, 3, (0.5, 0.5), kappa=kappa)
        torch.testing.assert_close(edges, torch.histogram(x, 3, range=(0.5, 0.5)).bin_edges)
        torch.testing.assert_close(hist, expected.hist.detach())
    (dk,) = torch.autograd.grad(hist.sum(), k)
    dense = reference.histogram_edges(x, torch.linspace(0, 1, 4, dtype=torch.float64), k).sum()
    torch.testing.assert_close(dk, torch.autograd.grad(dense, k)[0])
