"""Gradients with respect to the range and kappa (min, max and kappa as 0-d
tensors), against the dense formula (reference.histogram_edges) and finite
differences."""

import pytest
import torch

import softhist_ext
from softhist_ext import reference

KERNELS = list(softhist_ext.KERNELS)
f64 = torch.float64


def _edges(lo, hi, bins):
    return lo + (hi - lo) * torch.arange(bins + 1, dtype=f64, device=lo.device) / bins


def _dense(x, bins, lo, hi, kappa, kernel, weight=None, conserve_mass=False):
    """The reference, with kappa=None following the bin width as histc's does."""
    if kappa is None:
        kappa = reference.default_kappa_width(kernel) * bins / (hi - lo)
    return reference.histogram_edges(x, _edges(lo, hi, bins), kappa, kernel, weight, conserve_mass)


def _params(device, kappa=2.5):
    lo = torch.tensor(-2.0, dtype=f64, device=device, requires_grad=True)
    hi = torch.tensor(2.5, dtype=f64, device=device, requires_grad=True)
    k = torch.tensor(kappa, dtype=f64, device=device, requires_grad=True)
    return lo, hi, k


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("conserve_mass", [False, True])
def test_range_and_kappa_gradients_match_the_dense_formula(device, kernel, conserve_mass):
    x = (torch.randn(3, 200, dtype=f64, device=device) * 1.3).requires_grad_()
    w = torch.rand(3, 200, dtype=f64, device=device, requires_grad=True)
    lo, hi, k = _params(device)
    out = softhist_ext.histc(x, 7, lo, hi, k, kernel=kernel, weight=w, dim=-1,
                             conserve_mass=conserve_mass)
    dense = _dense(x, 7, lo, hi, k, kernel, w, conserve_mass)
    torch.testing.assert_close(out, dense)
    g = torch.randn_like(out)
    inputs = [x, w, lo, hi, k]
    ours = torch.autograd.grad(out, inputs, g)
    expected = torch.autograd.grad(dense, inputs, g)
    for name, a, b in zip(["x", "weight", "min", "max", "kappa"], ours, expected):
        torch.testing.assert_close(a, b, msg=f"{kernel}: d/d{name}")
    assert all(float(t.abs()) > 1e-3 for t in ours[2:])  # the test can fail


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("kappa_given", [True, False])
def test_gradcheck_and_gradgradcheck(device, kernel, kappa_given):
    x = (torch.randn(2, 12, dtype=f64, device=device) * 1.2).requires_grad_()
    w = torch.rand(2, 12, dtype=f64, device=device, requires_grad=True)
    lo, hi, k = _params(device, 2.0)

    def f(x, w, lo, hi, k):
        return softhist_ext.histc(x, 5, lo, hi, k if kappa_given else None, kernel=kernel,
                                  weight=w, dim=-1)

    inputs = (x, w, lo, hi, k)
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


@pytest.mark.parametrize("kernel", ["logistic", "bspline"])
def test_kappa_gradient_over_the_datas_range(device, kernel):
    # The data's range (min == max) is a constant; a tensor kappa still learns.
    x = (torch.randn(2, 40, dtype=f64, device=device) * 1.5).requires_grad_()
    k = torch.tensor(3.0, dtype=f64, device=device, requires_grad=True)
    flat = x.detach().flatten()
    lo, hi = flat.min(), flat.max()  # (constants)
    out = softhist_ext.histc(x, 6, kappa=k, kernel=kernel, dim=-1)
    dense = _dense(x, 6, lo, hi, k, kernel)
    torch.testing.assert_close(out, dense)
    torch.testing.assert_close(torch.autograd.grad(out.square().sum(), k),
                               torch.autograd.grad(dense.square().sum(), k))
    assert torch.autograd.gradcheck(lambda k: softhist_ext.histc(x.detach(), 6, kappa=k, kernel=kernel), (k,))
    joint = softhist_ext.histc2d(x[0], x[1], 4, kappa=k, kernel=kernel)
    torch.testing.assert_close(joint, softhist_ext.histc2d(x[0], x[1], 4, kappa=3.0, kernel=kernel))
    assert torch.autograd.grad(joint.square().sum(), k)[0].abs() > 0


@pytest.mark.parametrize("kernel", ["logistic", "bspline"])
def test_default_kappa_follows_the_range(device, kernel):
    # kappa=None is default_kappa_width / bin width: a wider range, a smaller kappa.
    x = torch.randn(300, dtype=f64, device=device)
    lo, hi, _ = _params(device)
    out = softhist_ext.histc(x, 9, lo, hi, None, kernel=kernel)
    dense = _dense(x, 9, lo, hi, None, kernel)
    torch.testing.assert_close(out, dense)
    g = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, [lo, hi], g),
                               torch.autograd.grad(dense, [lo, hi], g))


def test_intensities_in_0_to_255_in_float32(device):
    # An 8-bit image's intensities, a learnable window on them.
    x = (torch.rand(64, 64, device=device) * 255).round()
    lo = torch.tensor(20.0, device=device, requires_grad=True)
    hi = torch.tensor(230.0, device=device, requires_grad=True)
    out = softhist_ext.histc(x, 32, lo, hi)
    assert out.dtype == torch.float32
    lo64, hi64 = (t.detach().double().requires_grad_() for t in (lo, hi))
    dense = _dense(x.double().reshape(-1), 32, lo64, hi64, None, "logistic")
    torch.testing.assert_close(out.double(), dense, rtol=1e-5, atol=1e-3)
    g = torch.randn(32, device=device)
    ours = torch.autograd.grad(out, [lo, hi], g)
    expected = torch.autograd.grad(dense, [lo64, hi64], g.double())
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-3)


def test_learning_the_range_moves_it_onto_the_data(device):
    # Fit min and max so that the histogram of N(3, 0.5) puts equal mass in
    # its outermost bins as in a target made with the true [1, 5] window.
    torch.manual_seed(1)
    x = 3 + 0.5 * torch.randn(5000, dtype=f64, device=device)
    target = softhist_ext.histc(x, 16, 1.0, 5.0, conserve_mass=True) / 5000
    lo = torch.tensor(0.0, dtype=f64, device=device, requires_grad=True)
    hi = torch.tensor(7.0, dtype=f64, device=device, requires_grad=True)
    opt = torch.optim.Adam([lo, hi], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        h = softhist_ext.histc(x, 16, lo, hi, conserve_mass=True) / 5000
        loss = (h - target).pow(2).sum()
        loss.backward()
        opt.step()
    assert abs(lo.item() - 1.0) < 0.05 and abs(hi.item() - 5.0) < 0.05, (lo.item(), hi.item())


def test_edge_sums_against_the_densities(device):
    x = torch.randn(2, 500, dtype=f64, device=device) * 2
    w = torch.rand(2, 500, dtype=f64, device=device)
    params = torch.ops.softhist.params(x, 10, -3.0, 3.0, 3.0, "gaussian")[None]
    out = torch.ops.softhist.scatter([x], w, params, [10], [1], "gaussian", [0])
    edges = torch.linspace(-3, 3, 11, dtype=f64, device=device)
    dense = 3.0 * (w[..., None] * reference.kernel_density("gaussian", 3.0 * (x[..., None] - edges))).sum(-2)
    torch.testing.assert_close(out, dense)
    coef = torch.randn(2, 11, dtype=f64, device=device)
    gathered = torch.ops.softhist.gather([x], coef, params, [1], "gaussian", [0])
    torch.testing.assert_close(gathered, 3.0 * (reference.kernel_density(
        "gaussian", 3.0 * (x[..., None] - edges)) * coef[..., None, :]).sum(-1))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("uneven", [False, True])
def test_one_pass_backward_against_the_densities(kernel, uneven):
    """edge_gather_scatter (CPU, the first-order backward's single pass): both
    edge sums against the densities, and its moment against its definition,
    over NaN/inf samples, zero and uneven weights and rows."""
    ops = torch.ops.softhist
    x = torch.randn(3, 400, dtype=f64) * 2
    x[0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    w = torch.rand(3, 400, dtype=f64) * 3
    w[1, :50] = 0
    edges = torch.linspace(-3, 3, 13, dtype=f64)
    if uneven:
        edges = torch.cat([torch.zeros(1, dtype=f64), torch.rand(12, dtype=f64) + 0.2]).cumsum(0) - 4
    kappa = 2.5
    params = torch.cat([torch.tensor([0.0, 0.0, kappa, 0.0], dtype=f64), edges])[None]
    coef = torch.randn(3, 13, dtype=f64)
    for order in (1, 2):
        gathered, scattered, moment = ops.edge_gather_scatter(x, w, coef, params, order, kernel)
        xs = torch.where(torch.isfinite(x), x, torch.zeros_like(x))
        t = kappa * (xs[..., None] - edges)
        k = reference.kernel_density(kernel, t) if order == 1 else _density_slope(kernel, t)
        k = torch.where(torch.isfinite(x)[..., None], k, torch.zeros_like(k)) * kappa**order
        torch.testing.assert_close(gathered, (k * coef[..., None, :]).sum(-1))
        torch.testing.assert_close(scattered, (w[..., None] * k).sum(-2))
        expected = (w * torch.where(torch.isfinite(x), x - edges[0], 0) * gathered).sum()
        torch.testing.assert_close(moment, expected)
        assert order == 2 and kernel == "box" or float(moment.abs()) > 1e-3  # it can fail


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k != "hard"])
@pytest.mark.parametrize("n", [50, 60_000])  # the windows; the pieces, where the kernel has them
@pytest.mark.parametrize("spacing", ["even", "uneven"])
@pytest.mark.parametrize("conserve_mass", [False, True])
@pytest.mark.parametrize("dtype", [f64, torch.float32])
def test_scatter_edge_sums_against_the_densities(kernel, n, spacing, conserve_mass, dtype):
    """scatter_edge_sums (CPU, the forward that takes its backward's edge sums
    where they come from its Chebyshev moments): the histogram, and where it
    took them the edge sums and those weighted by x - e_0, against the
    densities, on intensities around 0..255 with NaN/inf samples, zero and
    uneven weights, and rows; edge_gather_scatter given them equals its own
    pass."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, n, dtype=f64, generator=gen) * 300 - 20
    x[0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    w = torch.rand(2, n, dtype=f64, generator=gen) * 3
    w[1, :50] = 0
    x, w = x.to(dtype), w.to(dtype)
    bins = 16
    kappa = reference.default_kappa_width(kernel) * bins / 256
    if spacing == "even":
        edges = torch.linspace(0, 256, bins + 1, dtype=f64)
        params = torch.ops.softhist.params(x, bins, 0.0, 256.0, kappa, kernel, conserve_mass)[None]
    else:
        widths = torch.rand(bins, dtype=f64, generator=gen) + 0.5
        edges = torch.cat([torch.zeros(1, dtype=f64), 256 * widths.cumsum(0) / widths.sum()])
        head = torch.tensor([0.0, 0.0, kappa, float(conserve_mass)], dtype=f64)
        params = torch.cat([head, edges])[None]
    hist, sums, taken = torch.ops.softhist.scatter_edge_sums(x, w, params, bins, kernel)
    pieces = n > 50
    assert bool(taken) == pieces

    xd = x.to(f64)
    counted = torch.isfinite(xd)
    if conserve_mass:
        counted &= (x >= 0) & (x <= 256)
    xs = torch.where(counted, xd, torch.zeros_like(xd))
    k = kappa * reference.kernel_density(kernel, kappa * (xs[..., None] - edges))
    if conserve_mass:  # the end edges' values are constants
        k[..., [0, -1]] = 0
    k = k * (counted * w.to(f64))[..., None]
    expected = torch.stack([k.sum(-2), (k * (xs - edges[0])[..., None]).sum(-2)], -2)
    tol = 1e-10 if dtype == f64 else 2e-5
    if pieces:
        torch.testing.assert_close(sums, expected, rtol=tol, atol=tol * float(expected.abs().max()))
    else:
        assert not sums.any()
    dense = reference.histogram_edges(x, edges, kappa, kernel, w, conserve_mass)
    torch.testing.assert_close(hist.to(f64), dense, rtol=tol, atol=tol * float(dense.abs().max()))
    coef = torch.randn(2, bins + 1, dtype=f64, generator=gen).to(dtype)
    given = torch.ops.softhist.edge_gather_scatter(x, w, coef, params, 1, kernel, sums, taken)
    own = torch.ops.softhist.edge_gather_scatter(x, w, coef, params, 1, kernel)
    for a, b in zip(given, own):
        torch.testing.assert_close(a.to(f64), b.to(f64), rtol=tol, atol=tol * float(b.abs().max()))
    # Without x's gradient: nothing gathered, the same edge sums and moment.
    for extra in ((sums, taken), ()):
        gathered, *rest = torch.ops.softhist.edge_gather_scatter(x, w, coef, params, 1, kernel,
                                                                 *extra, gather=False)
        assert gathered.shape == (0,)
        for a, b in zip(rest, own[1:]):
            torch.testing.assert_close(a.to(f64), b.to(f64), rtol=tol,
                                       atol=tol * float(b.abs().max()))


def _density_slope(kernel, t):
    """k'(t), by autograd through the reference density's own autograd."""
    t = t.detach().requires_grad_()
    (k,) = torch.autograd.grad(reference.kernel_cdf(kernel, t).sum(), t, create_graph=True)
    if not k.requires_grad:  # a piecewise constant density (box)
        return torch.zeros_like(t)
    (slope,) = torch.autograd.grad(k.sum(), t)
    return slope


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("conserve_mass", [False, True])
def test_one_pass_gradients_equal_the_differentiable_ones(kernel, conserve_mass):
    """On the CPU the first-order backward takes x's, the edges' and kappa's
    gradients from one pass (edge_gather_scatter); with create_graph it takes
    them from the separate, differentiable ops. Both must agree."""
    x = torch.randn(2, 3000, dtype=f64) * 1.5
    x[0, 0] = float("nan")
    w = torch.rand(2, 3000, dtype=f64)
    edges = torch.sort(torch.rand(21, dtype=f64) * 6 - 3).values

    def grads(create_graph):
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        er, kr = edges.clone().requires_grad_(), torch.tensor(3.0, dtype=f64, requires_grad=True)
        lo, hi, k = _params("cpu")
        h = softhist_ext.histogram(xr, er, weight=wr, kappa=kr, kernel=kernel).hist
        h2 = softhist_ext.histc(xr, 9, lo, hi, k, kernel=kernel, weight=wr, dim=-1,
                                conserve_mass=conserve_mass)
        loss = (h * torch.arange(20.0, dtype=f64)).sum() + (h2 * torch.arange(9.0, dtype=f64)).sum()
        return torch.autograd.grad(loss, (xr, wr, er, kr, lo, hi, k), create_graph=create_graph)

    for name, a, b in zip(["x", "weight", "edges", "kappa", "min", "max", "kappa (histc)"],
                          grads(False), grads(True)):
        torch.testing.assert_close(a, b.detach(), rtol=1e-9, atol=1e-9, msg=f"{kernel}: d/d{name}")


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k != "hard"])
@pytest.mark.parametrize("dtype", [f64, torch.float32])
def test_learning_the_bins_of_fixed_samples(kernel, dtype):
    """Samples that need no gradient (a histogram layer's fixed features): the
    gradients with respect to the edges, kappa and the range are those with
    x's gradient taken too, and those of the differentiable ops
    (create_graph), and the edges' against the dense formula; where the
    forward took the edge sums (pieces), the backward reads only them."""
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(2, 60_000, dtype=f64, generator=gen) * 300 - 20).to(dtype)
    x[0, :2] = torch.tensor([float("nan"), float("inf")])
    w = torch.rand(2, 60_000, dtype=f64, generator=gen).to(dtype)
    widths = torch.rand(16, dtype=f64, generator=gen) + 0.5
    edges = torch.cat([torch.zeros(1, dtype=f64), 256 * widths.cumsum(0) / widths.sum()]).to(dtype)
    kappa = reference.default_kappa_width(kernel) * 16 / 256
    up = torch.randn(16, dtype=f64, generator=gen).to(dtype)  # (histogram: one of all samples)
    up2 = torch.randn(2, 12, dtype=f64, generator=gen).to(dtype)

    def grads(x_grad, create_graph):
        xr = x.clone().requires_grad_(x_grad)
        er = edges.clone().requires_grad_()
        kr = torch.tensor(kappa, dtype=dtype, requires_grad=True)
        lo = torch.tensor(0.0, dtype=dtype, requires_grad=True)
        hi = torch.tensor(256.0, dtype=dtype, requires_grad=True)
        h = softhist_ext.histogram(xr, er, weight=w, kappa=kr, kernel=kernel).hist
        h2 = softhist_ext.histc(xr, 12, lo, hi, kr, kernel=kernel, weight=w, dim=-1)
        loss = (h * up).sum() + (h2 * up2).sum()
        return torch.autograd.grad(loss, (er, kr, lo, hi), create_graph=create_graph)

    tol = 1e-9 if dtype == f64 else 1e-4
    fixed = grads(False, False)
    for other in (grads(True, False), grads(False, True)):
        for name, a, b in zip(["edges", "kappa", "min", "max"], fixed, other):
            b = b.detach()
            torch.testing.assert_close(a, b, rtol=tol, atol=tol * float(b.abs().max()),
                                       msg=f"{kernel}: d/d{name}")
    # The edges' against the dense formula's own autograd.
    er = edges.to(f64).requires_grad_()
    dense = reference.histogram_edges(x.to(f64), er, kappa, kernel, w.to(f64))
    (expected,) = torch.autograd.grad((dense * up.to(f64)).sum(), er)
    torch.testing.assert_close(fixed[0].to(f64), expected, rtol=tol,
                               atol=tol * float(expected.abs().max()))


def test_opcheck_one_pass_backward():
    from torch.library import opcheck

    ops = torch.ops.softhist
    x = torch.randn(2, 30, dtype=f64)
    for kernel in KERNELS:
        for conserve_mass in (False, True):
            p = ops.params(x, 6, -2.0, 2.0, 2.5, kernel, conserve_mass)[None]
            coef = torch.randn(2, 7, dtype=f64)
            opcheck(ops.edge_gather_scatter, (x, torch.rand(2, 30, dtype=f64), coef, p, 1, kernel))
            opcheck(ops.edge_gather_scatter, (x, None, coef, p, 2, kernel))
            opcheck(ops.scatter_edge_sums, (x, torch.rand(2, 30, dtype=f64), p, 6, kernel))
            opcheck(ops.scatter_edge_sums, (x, None, p, 6, kernel))
    x = torch.randn(2, 20_000, dtype=f64)  # (enough samples for Chebyshev pieces: taken)
    p = ops.params(x, 6, -2.0, 2.0, None, "logistic")[None]
    hist, sums, taken = ops.scatter_edge_sums(x, None, p, 6, "logistic")
    assert taken
    opcheck(ops.edge_gather_scatter, (x, None, torch.randn(2, 7, dtype=f64), p, 1, "logistic", sums,
                                      taken))
    for extra in ((sums, taken), (None, None)):
        opcheck(ops.edge_gather_scatter, (x, None, torch.randn(2, 7, dtype=f64), p, 1, "logistic",
                                          *extra), {"gather": False})


def test_errors_name_the_fix(device):
    x = torch.randn(100, device=device)
    lo, hi, k = (t.float() for t in _params(device))
    with pytest.raises(RuntimeError, match="hard kernel .* no gradient with respect to the range"):
        softhist_ext.histc(x, 8, lo, hi, kernel="hard").sum().backward()
    with pytest.raises(ValueError, match="needs min < max"):
        softhist_ext.histc(x, 8, lo, lo)
    with pytest.raises(ValueError, match="histogram's point widened by 0.5.*pass numbers"):
        softhist_ext.histogram(x, 8, range=(lo, lo))
    with pytest.raises(TypeError, match="min must be a number or a 0-d tensor, got a 1-d float32 Tensor"):
        softhist_ext.histc(x, 8, torch.zeros(2, device=device), hi)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("conserve_mass", [False, True])
def test_opcheck_edge_ops_and_params_gradient(device, kernel, order, conserve_mass):
    from torch.library import opcheck

    ops = torch.ops.softhist
    x = torch.randn(2, 30, dtype=f64, device=device, requires_grad=True)
    w = torch.rand(2, 30, dtype=f64, device=device, requires_grad=True)
    p = ops.params(x.detach(), 6, -2.0, 2.0, 2.5, kernel, conserve_mass)[None].requires_grad_()
    opcheck(ops.scatter, ([x], w, p, [6], [order], kernel, [0]))
    opcheck(ops.gather, ([x], torch.randn(2, 7, dtype=f64, device=device, requires_grad=True),
                         p, [order], kernel, [0]))
    opcheck(ops.scatter, ([x], w, p, [6], [order - 1], kernel))
    opcheck(ops.gather, ([x], torch.randn(2, 6, dtype=f64, device=device, requires_grad=True), p,
                         [order - 1], kernel))


def test_torchscript_and_compile_with_a_tensor_range(device):
    def f(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return softhist_ext.histc(x, 8, lo, hi, k, kernel="bspline")

    x = torch.randn(500, dtype=f64, device=device)
    lo, hi, k = _params(device)
    expected = torch.autograd.grad(_dense(x, 8, lo, hi, k, "bspline").pow(2).sum(), [lo, hi, k])
    for g in (torch.jit.script(f), torch.compile(f, fullgraph=True)):
        grads = torch.autograd.grad(g(x, lo, hi, k).pow(2).sum(), [lo, hi, k])
        torch.testing.assert_close(grads, expected)


def test_compiled_default_kappa_of_a_tensor_range_over_a_0d_input():
    # The compiled row had sliced the 0-d input for the default kappa's policy.
    z = torch.tensor(0.3, dtype=f64)
    lo = torch.tensor(0.0, dtype=f64, requires_grad=True)
    f = torch.compile(lambda v, a: softhist_ext.histc(v, 4, a, 1.0, dim=0), backend="eager", fullgraph=True)
    torch.testing.assert_close(f(z, lo), _dense(z.reshape(1), 4, lo, torch.tensor(1.0, dtype=f64), None, "logistic"))


def test_compiled_training_of_a_range_compiles_once():
    # The range's values are never read on the host under torch.compile: no
    # guard on them, so the steps that move them reuse one graph.
    from torch._dynamo.testing import CompileCounter

    x = torch.randn(500, dtype=f64)
    target = torch.full((8,), 500 / 8, dtype=f64)
    counter = CompileCounter()

    def loss(x, lo, hi):
        return (softhist_ext.histc(x, 8, lo, hi) - target).pow(2).sum()

    compiled = torch.compile(loss, fullgraph=True, backend=counter)
    eager_lo, eager_hi, _ = _params("cpu")
    lo, hi = eager_lo.detach().clone().requires_grad_(), eager_hi.detach().clone().requires_grad_()
    for (a, b), f in (((eager_lo, eager_hi), loss), ((lo, hi), compiled)):
        opt = torch.optim.SGD([a, b], lr=1e-5)
        for _ in range(5):
            opt.zero_grad()
            f(x, a, b).backward()
            opt.step()
    assert counter.frame_count == 1
    torch.testing.assert_close((lo, hi), (eager_lo, eager_hi))
    assert float(eager_lo.detach()) != -2.0  # (the steps moved it)


@pytest.mark.parametrize("axes", [2, 3])
@pytest.mark.parametrize("kernel", KERNELS)
def test_joint_range_and_kappa_gradients_match_the_dense_formula(device, axes, kernel):
    # Every axis's min, max and kappa, batched rows with weights, through the op.
    gen = torch.Generator().manual_seed(axes)
    bins = [7, 5, 6][:axes]
    coords = [(torch.randn(2, 300, generator=gen, dtype=f64) * 1.3).to(device).requires_grad_()
              for _ in bins]
    w = torch.rand(2, 300, generator=gen, dtype=f64).to(device).requires_grad_()
    lo = torch.tensor([-2.0, -1.5, -2.5][:axes], dtype=f64, device=device, requires_grad=True)
    hi = torch.tensor([2.5, 3.0, 2.0][:axes], dtype=f64, device=device, requires_grad=True)
    k = torch.tensor([2.5, 4.0, 3.0][:axes], dtype=f64, device=device, requires_grad=True)
    params = torch.stack([lo, hi, k, torch.zeros_like(lo)], 1)
    out = torch.ops.softhist.scatter(coords, w, params, bins, [0] * axes, kernel)
    edges = [_edges(lo[a], hi[a], b) for a, b in enumerate(bins)]
    dense = torch.stack([reference.histogramdd_edges([c[r] for c in coords], edges, list(k.unbind()),
                                                     kernel, w[r]) for r in range(2)])
    torch.testing.assert_close(out, dense)
    g = torch.randn_like(out)
    inputs = [*coords, w, lo, hi, k]
    expected = torch.autograd.grad(dense, inputs, g)
    for ours, e in zip(torch.autograd.grad(out, inputs, g), expected):
        torch.testing.assert_close(ours, e)
    assert all(float(t.abs().min()) > 1e-3 for t in expected[-3:])  # the test can fail


@pytest.mark.parametrize("kernel", KERNELS)
def test_joint_params_gradcheck_and_gradgradcheck(kernel):
    gen = torch.Generator().manual_seed(0)
    x, y = (torch.randn(2, 12, generator=gen, dtype=f64) * 1.2 for _ in range(2))
    x.requires_grad_()
    w = torch.rand(2, 12, generator=gen, dtype=f64, requires_grad=True)
    v = torch.tensor([[-2.0, 2.0, 2.0], [-1.5, 2.5, 3.0]], dtype=f64, requires_grad=True)

    def f(x, w, v):
        params = torch.cat([v, torch.zeros(2, 1, dtype=f64)], 1)
        return torch.ops.softhist.scatter([x, y], w, params, [5, 4], [0, 0], kernel)

    assert torch.autograd.gradcheck(f, (x, w, v))
    assert torch.autograd.gradgradcheck(f, (x, w, v))
