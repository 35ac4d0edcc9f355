"""Smooth kernels over explicit, uneven bin edges (histogram with an edges
tensor, nn.SoftHistogram(learnable=True)): values and gradients with respect
to the samples, weights, edges and kappa against the dense formula
(reference.histogram_edges) and finite differences."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import softhist_ext
from softhist_ext import reference

KERNELS = list(softhist_ext.KERNELS)
f64 = torch.float64


def _uneven_edges(bins, lo=-3.0, hi=3.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    widths = torch.rand(bins, generator=gen, dtype=f64) * 4 + 0.05  # widths 80x apart
    return lo + (hi - lo) * torch.cat([torch.zeros(1, dtype=f64), widths.cumsum(0)]) / widths.sum()


@pytest.mark.parametrize("kernel", KERNELS)
def test_uneven_edges_match_the_dense_formula_values_and_gradients(kernel):
    x = (torch.randn(2000, dtype=f64) * 1.5).requires_grad_()
    x.data[:5] = torch.tensor([float("nan"), float("inf"), -50.0, 3.0, -3.0], dtype=f64)
    w = torch.rand(2000, dtype=f64, requires_grad=True)
    edges = _uneven_edges(12).requires_grad_()
    kappa = torch.tensor(6.0, dtype=f64, requires_grad=True)
    hist, returned = softhist_ext.histogram(x, edges, weight=w, kappa=kappa, kernel=kernel)
    assert returned is edges
    dense = reference.histogram_edges(x, edges, kappa, kernel, w)
    torch.testing.assert_close(hist, dense)
    g = torch.randn(12, dtype=f64)
    inputs = [x, w, edges, kappa]
    ours = torch.autograd.grad(hist, inputs, g)
    expected = torch.autograd.grad(dense, inputs, g)
    expected[0][:2] = 0  # the dense formula's NaN/inf samples: ours give 0, as histc
    for name, a, b in zip(["x", "weight", "edges", "kappa"], ours, expected):
        torch.testing.assert_close(a, b, msg=f"{kernel}: d/d{name}")


@pytest.mark.parametrize("kernel", KERNELS)
def test_even_explicit_edges_equal_the_int_bins(kernel):
    x = torch.randn(5000) * 2
    edges = torch.linspace(-4.0, 4.0, 33)
    explicit = softhist_ext.histogram(x, edges, kernel=kernel).hist
    counted = softhist_ext.histogram(x, 32, (-4.0, 4.0), kernel=kernel).hist
    torch.testing.assert_close(explicit, counted, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kernel", KERNELS)
def test_gradcheck_and_gradgradcheck_with_respect_to_edges_and_kappa(kernel):
    x = (torch.randn(25, dtype=f64) * 1.2).requires_grad_()
    w = torch.rand(25, dtype=f64, requires_grad=True)
    edges = _uneven_edges(5, -2.0, 2.0).requires_grad_()
    kappa = torch.tensor(3.0, dtype=f64, requires_grad=True)

    def f(x, w, edges, kappa):
        return softhist_ext.histogram(x, edges, weight=w, kappa=kappa, kernel=kernel).hist

    assert torch.autograd.gradcheck(f, (x, w, edges, kappa))
    assert torch.autograd.gradgradcheck(f, (x, w, edges, kappa))


@pytest.mark.parametrize("open_ends", [False, True])
def test_ops_over_explicit_edges_with_open_ends_and_rows(open_ends):
    # The engine's ops, batched rows, edges in params: against the formula.
    ops = torch.ops.softhist
    x = torch.randn(3, 400, dtype=f64) * 2
    edges = _uneven_edges(9)
    row = torch.tensor([0.0, 0.0, 4.0, float(open_ends)], dtype=f64)
    params = torch.cat([row, edges])[None]
    for kernel in ["logistic", "bspline"]:
        out = ops.scatter([x], None, params, [9], [0], kernel)
        torch.testing.assert_close(out, reference.histogram_edges(x, edges, 4.0, kernel,
                                                                  conserve_mass=open_ends))
        h = torch.randn(3, 9, dtype=f64)
        xg = x.clone().requires_grad_()
        (dense_grad,) = torch.autograd.grad(
            reference.histogram_edges(xg, edges, 4.0, kernel, conserve_mass=open_ends), xg, h)
        torch.testing.assert_close(ops.gather([x], h, params, [1], kernel), dense_grad)


def test_density_over_uneven_edges_integrates_to_one():
    x = torch.randn(10000, dtype=f64)
    edges = _uneven_edges(10, -5.0, 5.0)
    hist = softhist_ext.histogram(x, edges, density=True).hist
    torch.testing.assert_close((hist * (edges[1:] - edges[:-1])).sum(), torch.tensor(1.0, dtype=f64))


def test_errors_name_the_fix():
    x = torch.randn(100)
    with pytest.raises(ValueError, match="strictly increasing"):
        softhist_ext.histogram(x, torch.tensor([0.0, 1.0, 0.5, 2.0]))
    with pytest.raises(RuntimeError, match="kappa must be a positive finite number"):
        softhist_ext.histogram(x, torch.tensor([0.0, 1.0, 2.0]), kappa=torch.tensor(-1.0))
    with pytest.raises(RuntimeError, match=r"kappa \* bin width = 1e\+13 is past 1e\+12"):
        softhist_ext.histogram(x, torch.tensor([0.0, 1.0, 2.0]), kappa=1e13)
    params = torch.tensor([[0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 2.0]], dtype=f64)
    with pytest.raises(RuntimeError, match="hold the most bins \\+ 1 = 4 edges per row"):
        torch.ops.softhist.scatter([x], None, params, [3], [0], "logistic")
    params[0, 5] = -1.0  # the op checks them too (histogram does not under torch.compile)
    with pytest.raises(RuntimeError, match="finite and strictly increasing"):
        torch.ops.softhist.scatter([x], None, params, [2], [0], "logistic")


def test_learnable_layer_learns_the_quantiles():
    # Asking for equal counts in every bin moves the learnable edges onto the
    # data's quartiles (torch.quantile, the independent reference).
    torch.manual_seed(0)
    x = torch.randn(4000, dtype=f64)
    layer = softhist_ext.nn.SoftHistogram(4, -3.0, 3.0, kappa=20.0, learnable=True).double()
    assert [n for n, _ in layer.named_parameters()] == ["edges", "kappa"]
    layer.kappa.requires_grad_(False)
    opt = torch.optim.Adam(layer.parameters(), lr=0.02)
    for _ in range(300):
        loss = (layer(x) / 1000 - 1).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    quartiles = torch.quantile(x, torch.tensor([0.25, 0.5, 0.75], dtype=f64))
    torch.testing.assert_close(layer.edges.detach()[1:4], quartiles, atol=0.02, rtol=0)
    scripted = torch.jit.script(layer)
    torch.testing.assert_close(scripted(x), layer(x))


def test_learnable_layer_builds_on_the_meta_device():
    # As torch.nn's layers do (its edges' check had read a meta tensor).
    with torch.device("meta"):
        layer = softhist_ext.nn.SoftHistogram(8, 0.0, 1.0, learnable=True)
    assert layer.edges.is_meta and layer.kappa.is_meta and layer.edges.shape == (9,)


def test_learnable_layer_resets_its_parameters_after_to_empty():
    # torch.nn's idiom: build on the meta device, materialise, reset.
    with torch.device("meta"):
        layer = softhist_ext.nn.SoftHistogram(8, -2.0, 2.0, kappa=3.0, learnable=True)
    layer = layer.to_empty(device="cpu")
    layer.reset_parameters()
    assert torch.equal(layer.edges, torch.linspace(-2.0, 2.0, 9))
    assert layer.kappa.item() == 3.0 and layer.edges.requires_grad and layer.kappa.requires_grad
    default = softhist_ext.nn.SoftHistogram(8, -2.0, 2.0, learnable=True)
    with torch.no_grad():
        default.edges.mul_(1.1)
        default.kappa.add_(1.0)
    default.reset_parameters()  # the default kappa: histc's for these bins
    assert default.kappa.item() == reference.default_kappa_width("logistic") * 8 / 4.0
    assert torch.equal(default.edges, torch.linspace(-2.0, 2.0, 9))


def test_learnable_layer_errors_name_the_fix():
    # A cast that merges edges names itself, not only sorting or learning.
    with pytest.raises(ValueError, match="strictly increasing.*torch.float16 holds few distinct values"):
        softhist_ext.nn.SoftHistogram(4096, 0.0, 4096.0, learnable=True).half()(torch.rand(10).half())
    with pytest.raises(ValueError, match="learnable=True needs min < max.*min=0.0, max=0.0"):
        softhist_ext.nn.SoftHistogram(4, 0.0, 0.0, learnable=True)
    with pytest.raises(ValueError, match="input must be floating-point.*input.float()"):
        softhist_ext.nn.SoftHistogram(4, -1.0, 1.0, learnable=True)(torch.arange(10))
    # edges float32 can't tell apart: at construction, not at the first forward
    with pytest.raises(ValueError, match="65 edges over .1000000.0, 1000001.0. are not distinct in torch.float32"):
        softhist_ext.nn.SoftHistogram(64, 1e6, 1e6 + 1, learnable=True)
    # float16 can't tell these edges apart; they stay in the layer's float32
    layer = softhist_ext.nn.SoftHistogram(8, 1000.0, 1000.5, learnable=True)
    x = (torch.rand(100, generator=torch.Generator().manual_seed(3)) * 0.5 + 1000).half()
    dense = reference.histogram_edges(x, layer.edges, layer.kappa, "logistic")
    torch.testing.assert_close(layer(x).double(), dense.detach(), rtol=2e-3, atol=2e-3)
    with pytest.raises(IndexError, match="SoftHistogram's dim must be in"):
        softhist_ext.nn.SoftHistogram(4, -1.0, 1.0, learnable=True, dim=3)(torch.rand(10))
    with pytest.raises(TypeError, match="SoftHistogram's input must be a Tensor, got list"):
        layer([1.0, 2.0])


def test_learnable_layer_per_row_and_its_kappa_gradient():
    layer = softhist_ext.nn.SoftHistogram(6, 0.0, 255.0, learnable=True, dim=-1)
    images = (torch.rand(2, 3, 500) * 255).round()  # intensities, a histogram per image and channel
    out = layer(images)
    assert out.shape == (2, 3, 6)
    dense = reference.histogram_edges(images, layer.edges, layer.kappa, "logistic")
    torch.testing.assert_close(out.double(), dense, rtol=1e-5, atol=1e-3)
    g = torch.randn(2, 3, 6)
    ours = torch.autograd.grad(out, [layer.edges, layer.kappa], g)
    expected = torch.autograd.grad(dense, [layer.edges, layer.kappa], g.double())
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a.double(), b.double(), rtol=1e-4, atol=1e-4 * b.abs().max().item())


@pytest.mark.parametrize("kernel", ["logistic", "triangular"])
def test_even_edges_take_the_even_windows_with_the_same_gradients(kernel):
    # Evenly spaced edges run on the even bins' windows; their gradients with
    # respect to every edge are still the dense formula's.
    x = (torch.randn(3000, dtype=f64) * 1.5).requires_grad_()
    edges = torch.linspace(-3.0, 3.0, 9, dtype=f64, requires_grad=True)
    hist = softhist_ext.histogram(x, edges, kernel=kernel).hist
    kappa = reference.default_kappa_width(kernel) * 8 / (edges[-1] - edges[0])
    dense = reference.histogram_edges(x, edges, kappa, kernel)
    torch.testing.assert_close(hist, dense)
    g = torch.randn(8, dtype=f64)
    for a, b in zip(torch.autograd.grad(hist, [x, edges], g), torch.autograd.grad(dense, [x, edges], g)):
        torch.testing.assert_close(a, b)


def test_torchscript_torch_compile_and_opcheck_over_explicit_edges():
    from torch.library import opcheck

    def f(x: torch.Tensor, e: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return softhist_ext.histogram(x, e, kappa=k, kernel="bspline").hist

    x = torch.randn(300, dtype=f64)
    e = _uneven_edges(4, -2.0, 2.0).requires_grad_()
    k = torch.tensor(3.0, dtype=f64, requires_grad=True)
    expected = torch.autograd.grad(reference.histogram_edges(x, e, k, "bspline").pow(2).sum(), [e, k])
    for g in (torch.jit.script(f), torch.compile(f, fullgraph=True)):
        torch.testing.assert_close(torch.autograd.grad(g(x, e, k).pow(2).sum(), [e, k]), expected)
    ops = torch.ops.softhist
    p = torch.cat([torch.tensor([0.0, 0.0, 3.0, 0.0], dtype=f64), e.detach()])[None].requires_grad_()
    xr = x.clone().requires_grad_()
    opcheck(ops.scatter, ([xr], None, p, [4], [0], "bspline"))
    opcheck(ops.gather, ([xr], torch.randn(4, dtype=f64, requires_grad=True), p, [1], "bspline"))
    opcheck(ops.scatter, ([xr], None, p, [4], [1], "bspline", [0]))
    opcheck(ops.gather, ([xr], torch.randn(5, dtype=f64, requires_grad=True), p, [1], "bspline", [0]))


def _takes_pieces(x, edges, kappa, kernel):
    """Whether the forward over these edges takes Chebyshev pieces (as
    scatter_edge_sums says it took its sums from them)."""
    head = torch.tensor([0.0, 0.0, kappa, 0.0], dtype=f64)
    params = torch.cat([head, edges.detach().to(f64)])[None]
    return bool(torch.ops.softhist.scatter_edge_sums(x.detach()[None], None, params, edges.numel() - 1,
                                                     kernel)[2])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("kappa_width", [0.5, 1.0, 4.0, 30.0, 1000.0])
@pytest.mark.parametrize("lo", [0.0, 1e6])
@pytest.mark.parametrize("n", [500, 50_000])  # the windows; the Chebyshev pieces, where they pay
def test_every_order_over_uneven_edges_across_widths_and_far_ranges(kernel, kappa_width, lo, n):
    # Over uneven edges the window values are evaluated edge by edge (the
    # logistic by growth factors from the window's second edge), and the
    # compact kernels' pieces are cut at every edge's knots: values,
    # gradient and second derivative against the dense formula, for kernels
    # spanning part of a bin to hundreds of bins, near 0 and far from it.
    bins, hi = 24, lo + 1.0
    edges = _uneven_edges(bins, lo, hi, seed=5)
    kappa = kappa_width * bins / (hi - lo)  # kappa_width: kappa times the mean bin width
    gen = torch.Generator().manual_seed(3)
    x = (lo + torch.rand(n, generator=gen, dtype=f64) * 1.2 - 0.1).requires_grad_()
    if kernel in ("triangular", "bspline", "box"):
        assert _takes_pieces(x, edges, kappa, kernel) == (n > 500)
    g = torch.randn(bins, generator=gen, dtype=f64)

    def first_and_second(h, x):
        (grad,) = torch.autograd.grad(h, x, g, create_graph=True)
        if not grad.requires_grad:  # a piecewise-linear CDF (box): no second derivative
            return h.detach(), grad, torch.zeros_like(grad)
        (second,) = torch.autograd.grad(grad.sum(), x)
        return h.detach(), grad.detach(), second

    ours = first_and_second(softhist_ext.histogram(x, edges, kappa=kappa, kernel=kernel).hist, x)
    dense = first_and_second(reference.histogram_edges(x, edges, kappa, kernel), x)
    for order, (a, b) in enumerate(zip(ours, dense)):
        scale = kappa**order  # each derivative order brings a factor kappa
        torch.testing.assert_close(a / scale, b / scale, rtol=1e-9, atol=1e-9, msg=f"order {order}")
    if lo != 0:
        return  # (float32 spaces values 0.06 apart at 1e6: it can't hold these edges)
    x32, e32 = x.detach().float(), edges.float()
    torch.testing.assert_close(
        softhist_ext.histogram(x32, e32, kappa=kappa, kernel=kernel).hist.double(),
        reference.histogram_edges(x32.double(), e32.double(), kappa, kernel), rtol=1e-5, atol=2e-4)


@pytest.mark.parametrize("kernel", ["logistic", "triangular", "bspline", "box"])
@pytest.mark.parametrize("n", [3000, 60_000])  # the windows; the compact kernels' pieces
def test_edges_closer_than_the_index_cells_and_samples_on_them(kernel, n):
    # Some edges 1e-9 apart, so that no index of cells (at most 2^16 of
    # them) separates them and a sample compares with several edges (or
    # pieces' cuts) of its cell; samples on every edge, and kappa's reach
    # away from each (the compact kernels' knots: their pieces' cuts).
    gen = torch.Generator().manual_seed(7)
    coarse = torch.sort(torch.rand(40, generator=gen, dtype=f64) * 10 - 5).values
    edges = torch.sort(torch.cat([coarse, coarse[::3] + 1e-9, coarse[1::5] + 2e-9])).values
    kappa = 3.0 * (edges.numel() - 1) / float(edges[-1] - edges[0])
    reach = {"logistic": 39.2, "triangular": 1.0, "bspline": 2.0, "box": 1.0}[kernel] / kappa
    x = torch.cat([torch.randn(n, generator=gen, dtype=f64) * 3, edges, edges + reach,
                   edges - reach]).requires_grad_()
    assert _takes_pieces(x, edges, kappa, kernel) == (n > 3000 and kernel != "logistic")
    hist = softhist_ext.histogram(x, edges, kappa=kappa, kernel=kernel).hist
    dense = reference.histogram_edges(x, edges, kappa, kernel)
    torch.testing.assert_close(hist, dense, rtol=1e-9, atol=1e-9)
    g = torch.randn(hist.shape, generator=gen, dtype=f64)
    (ours,) = torch.autograd.grad(hist, x, g)
    (expected,) = torch.autograd.grad(dense, x, g)
    # (The box's density jumps at reach: there the gradient is a convention.)
    kept = n + edges.numel() if kernel == "box" else x.numel()
    torch.testing.assert_close(ours[:kept], expected[:kept], rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("sort", [False, True])
def test_logistic_float32_with_bins_many_kernel_widths_apart(sort):
    # Wide first and last bins around narrow ones (kappa times the widths:
    # 400 and 4): samples deep in the wide bins lie too many kernel widths
    # from their windows' second edges for float32 growth factors, samples in
    # the narrow bins use them; sorted, a block of samples holds one kind.
    edges = torch.cat([torch.tensor([-1.0]), torch.linspace(0.0, 0.2, 21), torch.tensor([1.2])])
    kappa = 400.0
    gen = torch.Generator().manual_seed(11)
    x = torch.rand(4000, generator=gen) * 2.6 - 1.2  # past both ends too
    if sort:
        x = x.sort().values
    x.requires_grad_()
    w = (torch.rand(4000, generator=gen) * 2).requires_grad_()
    hist = softhist_ext.histogram(x, edges, weight=w, kappa=kappa).hist
    dense = reference.histogram_edges(x.double(), edges.double(), kappa, "logistic", w.double())
    torch.testing.assert_close(hist.double(), dense, rtol=1e-5, atol=1e-3)
    g = torch.randn(hist.shape, generator=gen)
    ours = torch.autograd.grad(hist, [x, w], g)
    expected = torch.autograd.grad(dense, [x, w], g.double())
    for name, a, b, scale in zip(["x", "weight"], ours, expected, [kappa, 1.0]):
        torch.testing.assert_close(a.double() / scale, b.double() / scale, rtol=1e-4, atol=1e-5,
                                   msg=name)


class _OpsCalled(TorchDispatchMode):
    """The softhist ops called, by name, as the dispatcher sees them."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "softhist":
            self.names.append(func.__name__.split(".")[0])
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("kernel", ["triangular", "bspline", "box"])
@pytest.mark.parametrize("dtype", [f64, torch.float32])
@pytest.mark.parametrize("conserve_mass", [False, True])
def test_the_backward_reads_the_places_the_forward_kept(kernel, dtype, conserve_mass):
    # Over uneven pieces the forward keeps each sample's piece and its place
    # in it (scatter_places), and the backward's gathers for x and the weights
    # read them (gather_at_places) rather than locate the samples again:
    # against the dense formula, for rows of samples with weights (some 0),
    # on edges, on the kernel's knots, out of range, NaN and inf.
    gen = torch.Generator().manual_seed(13)
    bins = 24
    edges = _uneven_edges(bins, -300.0, 700.0, seed=2)
    kappa = 2.0 * bins / 1000.0
    x = torch.randn(2, 40_000, generator=gen, dtype=f64) * 250 + 200
    x[0, : bins + 1] = edges
    x[0, bins + 1 : 2 * bins + 2] = edges + 1.0 / kappa
    x[1, :4] = torch.tensor([float("nan"), float("inf"), -1e4, 1e4], dtype=f64)
    w = torch.rand(2, 40_000, generator=gen, dtype=f64)
    w[:, 100:300] = 0
    xr, wr = x.to(dtype).requires_grad_(), w.to(dtype).requires_grad_()
    params = softhist_ext.ops._explicit_params(xr, edges.to(dtype), kappa, kernel, conserve_mass)
    g = torch.randn(2, bins, generator=gen, dtype=f64)
    with _OpsCalled() as called:
        hist = torch.ops.softhist.scatter([xr], wr, params, [bins], [0], kernel)
        ours = torch.autograd.grad(hist, [xr, wr], g.to(dtype))
    assert called.names == ["scatter_places", "gather_at_places", "gather_at_places"]
    xd, wd = xr.detach().double().requires_grad_(), wr.detach().double().requires_grad_()
    dense = reference.histogram_edges(xd, edges, kappa, kernel, wd, conserve_mass)
    expected = torch.autograd.grad(dense, [xd, wd], g)
    tol = 1e-9 if dtype == f64 else 2e-5
    torch.testing.assert_close(hist.detach().double(), dense.detach(), rtol=tol,
                               atol=tol * float(dense.detach().abs().max()))
    finite = torch.isfinite(x)
    if kernel == "box":  # (its density jumps at its knots: the gradient there is a convention)
        finite[0, bins + 1 : 2 * bins + 2] = False
    for name, a, b in zip(["x", "weight"], ours, expected):
        b = torch.where(finite, b, torch.zeros_like(b))  # (ours: 0 for NaN and inf, as histc's)
        torch.testing.assert_close(torch.where(finite, a.double(), torch.zeros_like(b)), b,
                                   rtol=tol, atol=tol * float(b.abs().max()), msg=name)
        assert float(a[~torch.isfinite(x)].abs().max()) == 0
    assert float(ours[0][w == 0].abs().max()) == 0 and float(ours[1][w == 0].abs().max()) > 0


def test_places_are_kept_only_where_the_forward_located_uneven_pieces():
    # scatter_places keeps them over uneven pieces (taken), not for few
    # samples (the windows) nor over even edges; gather_at_places gathers at
    # them, or else from x: orders 0 and 1 against the dense formula.
    from torch.library import opcheck

    ops = torch.ops.softhist
    zero = torch.zeros(1, dtype=f64)
    uneven = _uneven_edges(8, -2.0, 2.0)
    even = torch.linspace(-2.0, 2.0, 9, dtype=f64)
    gen = torch.Generator().manual_seed(1)
    for n, edges, kept in [(50_000, uneven, True), (300, uneven, False), (50_000, even, False)]:
        params = softhist_ext.ops._explicit_params(zero, edges, 4.0, "bspline", False)
        x = torch.randn(n, generator=gen, dtype=f64)
        hist, pieces, deltas, taken = ops.scatter_places(x, None, params, 8, "bspline")
        assert bool(taken) == kept
        assert pieces.dtype == torch.int32 and deltas.dtype == f64 and pieces.shape == x.shape
        if kept:  # -1: a sample beyond the bspline's reach (2 / kappa) of every edge
            assert torch.equal(pieces < 0, (x < -2.5) | (x >= 2.5))
        xd = x.clone().requires_grad_()
        masses = reference.histogram_edges(xd[:, None], edges, 4.0, "bspline")  # (n, bins)
        torch.testing.assert_close(hist, masses.sum(0).detach(), rtol=1e-9, atol=1e-9)
        h = torch.randn(8, generator=gen, dtype=f64)
        values = masses @ h
        (slopes,) = torch.autograd.grad(values.sum(), xd)
        for order, want in [(0, values.detach()), (1, slopes)]:
            out = ops.gather_at_places(x, h, params, order, "bspline", pieces, deltas, taken)
            torch.testing.assert_close(out, want, rtol=1e-9, atol=1e-9, msg=f"n={n}, order {order}")
        if kept:  # (else the places are unspecified, as scatter_places says: left unwritten)
            w = torch.rand(x.shape, generator=gen, dtype=f64)
            opcheck(ops.scatter_places, (x, w, params, 8, "bspline"))
            opcheck(ops.gather_at_places, (x, h, params, 1, "bspline", pieces, deltas, taken))
            with pytest.raises(RuntimeError, match="pieces and deltas must be scatter_places's"):
                ops.gather_at_places(x, h, params, 1, "bspline", pieces.long(), deltas, taken)
            with pytest.raises(RuntimeError, match="takes orders 0 and 1"):
                ops.gather_at_places(x, h, params, 2, "bspline", pieces, deltas, taken)
            # Pieces of another grid (say, finer edges'): an error, not reads past this one's.
            with pytest.raises(RuntimeError, match="must be scatter_places's over the same params"):
                ops.gather_at_places(x, h, params, 1, "bspline", pieces * 1000, deltas, taken)


def test_places_under_torchscript_and_torch_compile():
    # The forward that keeps the places, scripted and compiled (fullgraph):
    # the samples' and weights' gradients against the dense formula.
    def f(x: torch.Tensor, w: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return softhist_ext.histogram(x, e, weight=w, kappa=4.0, kernel="triangular").hist

    gen = torch.Generator().manual_seed(3)
    e = _uneven_edges(16, -2.0, 2.0)
    x = torch.randn(30_000, generator=gen, dtype=f64)
    w = torch.rand(30_000, generator=gen, dtype=f64)
    params = softhist_ext.ops._explicit_params(x, e, 4.0, "triangular", False)
    assert torch.ops.softhist.scatter_places(x, w, params, 16, "triangular")[3]
    xd, wd = x.clone().requires_grad_(), w.clone().requires_grad_()
    g = torch.randn(16, generator=gen, dtype=f64)
    expected = torch.autograd.grad(reference.histogram_edges(xd, e, 4.0, "triangular", wd), [xd, wd], g)
    for h in (torch.jit.script(f), torch.compile(f, fullgraph=True)):
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        ours = torch.autograd.grad(h(xr, wr, e), [xr, wr], g)
        for a, b in zip(ours, expected):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kernel", KERNELS)
def test_uneven_edges_within_the_types_rounding_of_even_ones_stay_uneven(kernel):
    # Edges a fraction of a bin from even ones, where that fraction is below
    # the rounding of their magnitude in the samples' type, had been taken as
    # even: bfloat16 samples, float16 ones at 1000, float32 ones at 1e6.
    gen = torch.Generator().manual_seed(4)
    cases = [
        (torch.bfloat16, [0.0, 0.875, 2.0, 3.0, 4.0], 0.0, 4.0),
        (torch.float16, [1000.0, 1001.5, 1002.0, 1003.0, 1004.0], 1000.0, 1004.0),
        (torch.float32, [1e6, 1e6 + 1.4, 1e6 + 2, 1e6 + 3, 1e6 + 4], 1e6, 1e6 + 4),
    ]
    for dtype, edges, lo, hi in cases:
        x = (lo + (hi - lo) * torch.rand(3000, generator=gen, dtype=f64)).to(dtype)
        e = torch.tensor(edges, dtype=dtype)
        hist = softhist_ext.histogram(x, e, kappa=3.0, kernel=kernel).hist
        dense = reference.histogram_edges(x.double(), e.double(), 3.0, kernel)
        torch.testing.assert_close(hist.double(), dense, rtol=2e-2 if dtype == torch.bfloat16 else 1e-3,
                                   atol=1e-2, msg=f"{dtype}")
