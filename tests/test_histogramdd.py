"""histogramdd and the engine's D = 1, 2, 3 axes: against torch.histogramdd
(hard kernel) and the dense outer product (smooth kernels), gradients of
first and second order, batched rows, TorchScript and torch.compile."""

import pytest
import torch
from torch.library import opcheck

import softhist_ext
from softhist_ext import reference

KERNELS = list(softhist_ext.KERNELS)
BINS = {1: [7], 2: [6, 5], 3: [5, 4, 6]}
RANGE = {1: [-2.0, 2.5], 2: [-2.0, 2.5, -1.5, 3.0], 3: [-2.0, 2.5, -1.5, 3.0, -3.0, 1.0]}


def _samples(n, axes, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, axes, generator=gen, dtype=torch.float64) * 1.2).to(dtype)


@pytest.mark.parametrize("axes", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hard_kernel_equals_torch_histogramdd(device, axes, dtype):
    x = _samples(4000, axes, dtype)
    w = torch.rand(4000, dtype=dtype)
    for kwargs in (dict(bins=BINS[axes]), dict(bins=4, range=RANGE[axes]), dict(bins=BINS[axes], weight=w),
                   dict(bins=BINS[axes], range=RANGE[axes], density=True)):
        expected = torch.histogramdd(x, **kwargs)
        args = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        ours = softhist_ext.histogramdd(x.to(device), kernel="hard", **args)
        if "weight" in kwargs or "density" in kwargs:
            torch.testing.assert_close(ours.hist.cpu(), expected.hist, rtol=1e-12 if dtype == torch.float64 else 1e-5, atol=0)
        else:
            assert torch.equal(ours.hist.cpu(), expected.hist)
        assert len(ours.bin_edges) == axes
        for a, b in zip(ours.bin_edges, expected.bin_edges):
            assert torch.equal(a.cpu(), b)


@pytest.mark.parametrize("axes", [1, 2, 3])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("conserve_mass", [False, True])
def test_matches_dense_outer_product(device, axes, kernel, conserve_mass):
    x = _samples(600, axes, seed=axes)
    w = torch.rand(600, dtype=torch.float64)
    kappa = [2.0 + a for a in range(axes)]
    ours = softhist_ext.histogramdd(x.to(device), BINS[axes], RANGE[axes], w.to(device), kappa=kappa,
                                    kernel=kernel, conserve_mass=conserve_mass).hist
    lo, hi = RANGE[axes][0::2], RANGE[axes][1::2]
    dense = reference.histogramdd(list(x.unbind(-1)), BINS[axes], lo, hi, kappa, kernel, w, conserve_mass)
    torch.testing.assert_close(ours.cpu(), dense, rtol=1e-10, atol=1e-11)
    ours32 = softhist_ext.histogramdd(x.float().to(device), BINS[axes], RANGE[axes], w.float().to(device),
                                      kappa=kappa, kernel=kernel, conserve_mass=conserve_mass).hist
    torch.testing.assert_close(ours32.cpu().double(), dense, rtol=1e-5, atol=1e-5)
    for dtype in (torch.float16, torch.bfloat16):
        ours16 = softhist_ext.histogramdd(x.to(dtype).to(device), BINS[axes], RANGE[axes], kappa=kappa,
                                          kernel=kernel).hist
        dense16 = reference.histogramdd(list(x.to(dtype).double().unbind(-1)), BINS[axes], lo, hi, kappa, kernel)
        torch.testing.assert_close(ours16.cpu().double(), dense16, rtol=2e-2, atol=0.5)


@pytest.mark.parametrize("axes", [2, 3])
@pytest.mark.parametrize("kernel", KERNELS)
def test_gradients_first_and_second_order(device, axes, kernel):
    x = (_samples(25, axes, seed=7) * 0.8).to(device).requires_grad_()
    w = torch.rand(25, dtype=torch.float64, device=device, requires_grad=True)
    bins = [4, 3, 5][:axes]

    def f(x, w):
        return softhist_ext.histogramdd(x, bins, RANGE[axes], w, kappa=2.5, kernel=kernel).hist

    assert torch.autograd.gradcheck(f, (x, w))
    assert torch.autograd.gradgradcheck(f, (x, w))
    g = torch.randn(bins, dtype=torch.float64, device=device)
    ours = torch.autograd.grad(f(x, w), (x, w), g)
    lo, hi = RANGE[axes][0::2], RANGE[axes][1::2]
    xr, wr = x.detach().cpu().requires_grad_(), w.detach().cpu().requires_grad_()
    dense = reference.histogramdd(list(xr.unbind(-1)), bins, lo, hi, [2.5] * axes, kernel, wr)
    expected = torch.autograd.grad(dense, (xr, wr), g.cpu())
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-9, atol=1e-11)


def test_batched_rows_equal_one_call_per_row(device):
    x = _samples(3 * 400, 3).reshape(3, 400, 3).to(device)
    w = torch.rand(3, 400, dtype=torch.float64, device=device)
    batched = softhist_ext.histogramdd(x, [4, 5, 3], RANGE[3], w, kernel="bspline", dim=1).hist
    assert batched.shape == (3, 4, 5, 3)
    for r in range(3):
        one = softhist_ext.histogramdd(x[r], [4, 5, 3], RANGE[3], w[r], kernel="bspline").hist
        torch.testing.assert_close(batched[r], one, rtol=1e-12, atol=1e-12)
    # The samples along another dimension: the same histograms.
    moved = softhist_ext.histogramdd(x.transpose(0, 1), [4, 5, 3], RANGE[3], w.t(), kernel="bspline", dim=0).hist
    torch.testing.assert_close(moved, batched, rtol=1e-12, atol=1e-12)
    # dim counts from input's dimensions, as torch's do: -2 is N (the last holds D).
    negative = softhist_ext.histogramdd(x, [4, 5, 3], RANGE[3], w, kernel="bspline", dim=-2).hist
    torch.testing.assert_close(negative, batched, rtol=0, atol=0)


def test_numpy_scalars_and_0d_tensors_as_numbers():
    # As histc and torch.histogramdd take them: the same as Python numbers.
    np = pytest.importorskip("numpy")
    x = _samples(500, 2, torch.float32)
    for kernel in ("hard", "logistic"):
        plain = softhist_ext.histogramdd(x, [3, 4], [-2.0, 2.0, -1.0, 3.0], kappa=None if kernel == "hard" else 5.0,
                                         kernel=kernel).hist
        for bins, lo in (([np.int64(3), torch.tensor(4)], np.float32(-2.0)), ([3, 4], torch.tensor(-2.0))):
            kappa = None if kernel == "hard" else np.float32(5.0)
            ours = softhist_ext.histogramdd(x, bins, [lo, 2.0, -1.0, 3.0], kappa=kappa, kernel=kernel).hist
            assert torch.equal(ours, plain)
        joint = softhist_ext.histc2d(x[:, 0], x[:, 1], torch.tensor(3), np.float32(-2.0), np.float64(3.0),
                                     None if kernel == "hard" else np.float32(5.0), kernel)
        expected = softhist_ext.histc2d(x[:, 0], x[:, 1], 3, -2.0, 3.0, None if kernel == "hard" else 5.0, kernel)
        assert torch.equal(joint, expected)


def test_marginals_are_histc_and_histc2d(device):
    # Open ends: every sample inside the ranges keeps its mass, so summing out
    # axes gives the lower-dimensional histograms of the same samples.
    x = torch.rand(2000, 3, dtype=torch.float64, device=device)
    rng = [0.0, 1.0] * 3
    h3 = softhist_ext.histogramdd(x, [6, 5, 4], rng, kappa=20.0, conserve_mass=True).hist
    h2 = softhist_ext.histc2d(x[:, 0], x[:, 1], (6, 5), 0.0, 1.0, 20.0, conserve_mass=True)
    h1 = softhist_ext.histc(x[:, 2], 4, 0.0, 1.0, 20.0, conserve_mass=True)
    torch.testing.assert_close(h3.sum(-1), h2, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(h3.sum((0, 1)), h1, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(h3.sum().item(), 2000.0, rtol=1e-12, atol=0)


def test_rgb_colour_histogram_of_a_real_image():
    skimage = pytest.importorskip("skimage")
    image = torch.from_numpy(skimage.data.astronaut()).double()  # 512 x 512 x 3, 0..255
    pixels = image.reshape(-1, 3)
    hard = softhist_ext.histogramdd(pixels, 8, [0.0, 256.0] * 3, kernel="hard").hist
    assert torch.equal(hard, torch.histogramdd(pixels, 8, range=[0.0, 256.0] * 3).hist)
    soft = softhist_ext.histogramdd(pixels, 8, [0.0, 256.0] * 3, conserve_mass=True).hist
    torch.testing.assert_close(soft.sum().item(), float(pixels.shape[0]), rtol=1e-12, atol=0)
    # Its marginals are the channels' own soft histograms.
    for channel, others in ((0, (1, 2)), (1, (0, 2)), (2, (0, 1))):
        marginal = softhist_ext.histc(pixels[:, channel], 8, 0.0, 256.0, conserve_mass=True)
        torch.testing.assert_close(soft.sum(others), marginal, rtol=1e-10, atol=1e-8)


def test_scripted_and_compiled(device):
    x = torch.rand(300, 3, dtype=torch.float64, device=device, requires_grad=True)

    def loss(x: torch.Tensor) -> torch.Tensor:
        return softhist_ext.histogramdd(x, [4, 3, 5], [0.0, 1.0, 0.0, 1.0, 0.0, 1.0], None, False, 6.0,
                                        "gaussian").hist.pow(2).sum()

    eager = loss(x)
    (g_eager,) = torch.autograd.grad(eager, x)
    for f in (torch.compile(loss, fullgraph=True), torch.jit.script(loss)):
        value = f(x)
        (grad,) = torch.autograd.grad(value, x)
        torch.testing.assert_close(value, eager)
        torch.testing.assert_close(grad, g_eager)


def test_scripted_kappa_per_axis():
    # TorchScript types a list literal of numbers as List[float], one with a
    # None as List[Optional[float]]: histogramdd takes both.
    @torch.jit.script
    def numbers(x: torch.Tensor) -> torch.Tensor:
        return softhist_ext.histogramdd(x, [4, 5], [0.0, 1.0, 0.0, 1.0], kappa=[20.0, 30.0]).hist

    @torch.jit.script
    def with_default(x: torch.Tensor) -> torch.Tensor:
        return softhist_ext.histogramdd(x, [4, 5], [0.0, 1.0, 0.0, 1.0], kappa=[20.0, None]).hist

    x = torch.rand(200, 2, dtype=torch.float64)
    default = reference.default_kappa_width("logistic") * 5  # (bins of width 1/5)
    for f, kappa in ((numbers, [20.0, 30.0]), (with_default, [20.0, default])):
        expected = reference.histogramdd(list(x.unbind(-1)), [4, 5], [0.0, 0.0], [1.0, 1.0], kappa)
        torch.testing.assert_close(f(x), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad, match", [
    (dict(input=torch.rand(10, 4)), "D = 1, 2 or 3"),
    (dict(input=torch.rand(10)), r"\(N, D\)"),
    (dict(bins=[3, 4]), "list of 3 ints"),
    (dict(range=[0.0, 1.0]), "min and max for each of the 3 axes"),
    (dict(range=[0.0, 1.0, 1.0, 0.5, 0.0, 1.0]), r"axis 1 must have min <= max, got \[1.0, 0.5\]"),
    (dict(weight=torch.rand(9)), r"weight must have shape input.shape\[:-1\]"),
    (dict(kappa=[1.0, 2.0]), "kappa must be"),
    (dict(dim=1), r"histogramdd's dim must be one of input's sample dimensions, in \[0, 0\] or \[-2, -2\]"),
    (dict(dim=-1), r"in \[0, 0\] or \[-2, -2\] for a 2-d input \(the last holds each sample's coordinates\), got -1"),
    (dict(input=torch.arange(30).reshape(10, 3)), "needs floating-point input"),
    (dict(input=torch.rand(10, 3, dtype=torch.complex64)), "needs floating-point input"),
])
def test_errors_name_the_argument(bad, match):
    args = dict(input=torch.rand(10, 3), bins=3)
    args.update(bad)
    with pytest.raises((ValueError, IndexError), match=match):
        softhist_ext.histogramdd(**args)
    with pytest.raises(TypeError, match="histogramdd.s bins must be an int, a list of ints, or a list of 1-d tensors of edges"):
        softhist_ext.histogramdd(torch.rand(10, 3), bins="3")


def test_a_point_range_beside_a_tensor_is_widened():
    # A tensor elsewhere in range or kappa had made a point range an error.
    pts = torch.rand(50, 2, dtype=torch.float64) * 4
    lo = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    expected = softhist_ext.histogramdd(pts, 3, [0.0, 1.0, 2.0, 2.0])
    kappa = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    for range_, k in [([lo, 1.0, 2.0, 2.0], None), ([0.0, 1.0, 2.0, 2.0], kappa)]:
        got = softhist_ext.histogramdd(pts, 3, range_, kappa=k)
        torch.testing.assert_close(got.bin_edges[1], torch.linspace(1.5, 2.5, 4, dtype=torch.float64))
        if k is None:
            torch.testing.assert_close(got.hist, expected.hist)
        got.hist.sum().backward()
    assert lo.grad is not None and kappa.grad is not None


def test_density_divides_by_each_width_in_turn():
    # A bin volume below the dtype's smallest number (1e-46 in float32) had
    # made empty bins NaN; torch.histogramdd leaves them 0.
    pts = torch.tensor([[0.0, 0.0], [4e-23, 4e-23]])
    for kernel in ["hard", "box"]:
        hist = softhist_ext.histogramdd(pts, [4, 4], kernel=kernel, density=True).hist
        assert not hist.isnan().any()
    hard = softhist_ext.histogramdd(pts, [4, 4], kernel="hard", density=True).hist
    assert torch.equal(hard, torch.histogramdd(pts, [4, 4], density=True).hist)
