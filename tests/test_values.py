"""Forward values against independent references: the dense formula, the forum
recipe, torch.histc and closed-form properties."""

import math

import pytest
import torch

import softhist_ext
from softhist_ext import reference

# rtol/atol per dtype for counts of order 1..100 (float64 compares with the
# dense float64 formula to near machine precision).
TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.float32: dict(rtol=1e-5, atol=1e-4),
    torch.float16: dict(rtol=2e-3, atol=0.1),
    torch.bfloat16: dict(rtol=1e-2, atol=0.5),
}


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize(
    "bins,lo,hi,kappa",
    [(64, -3.0, 3.0, None), (10, -1.0, 1.0, 0.3), (7, -2.0, 5.0, 40.0), (1, -1.0, 1.0, 2.0),
     (300, -4.0, 4.0, 2000.0), (50, 0.0, 255.0, 0.05)],
)
def test_matches_dense_reference(device, dtype, bins, lo, hi, kappa):
    x = (torch.randn(3000, dtype=torch.float64) * (hi - lo) / 4 + (hi + lo) / 2).to(dtype)
    out = softhist_ext.histc(x.to(device), bins, lo, hi, kappa)
    expected = reference.histc(x.double(), bins, lo, hi, kappa)
    assert out.dtype == dtype and out.shape == (bins,) and out.device.type == device
    torch.testing.assert_close(out.cpu().double(), expected, **TOL[dtype])


def test_equals_forum_soft_histogram(device):
    x = torch.rand(5000, dtype=torch.float64) * 1.2 - 0.1
    for sigma in (5.0, 50.0, 500.0):
        out = softhist_ext.histc(x.to(device), 20, 0.0, 1.0, sigma).cpu()
        forum = reference.forum_soft_histogram(x, 20, 0.0, 1.0, sigma)
        torch.testing.assert_close(out, forum, rtol=1e-9, atol=1e-9)


def test_sharp_kernel_is_torch_histc(device):
    # Samples at least a fifth of a bin from any edge: at kappa * width = 2000
    # each sample's mass sits in its own bin to far below float64 resolution.
    width = 8 / 256
    bin_of = torch.randint(0, 256, (10000,))
    x = -4 + (bin_of + 0.5 + (torch.rand(10000) - 0.5) * 0.6).double() * width
    out = softhist_ext.histc(x.to(device), 256, -4.0, 4.0, kappa=2000 * 256 / 8)
    torch.testing.assert_close(out.cpu(), torch.histc(x, 256, -4, 4), rtol=0, atol=1e-9)


@pytest.mark.parametrize("kappa", [None, 0.7, 30.0])
def test_mass_is_conserved(device, kappa):
    # Samples far (> 40 / kappa) from both ends of the range keep all their mass.
    x = torch.randn(20000, dtype=torch.float64) * 0.5
    out = softhist_ext.histc(x.to(device), 40, -70.0, 70.0, kappa)
    assert abs(out.sum().item() - len(x)) < 1e-8 * len(x)


def test_float32_mass_within_float_resolution(device):
    x = torch.randn(1_000_000) * 0.5
    out = softhist_ext.histc(x.to(device), 100, -8.0, 8.0, kappa=None)
    assert abs(out.double().sum().item() - len(x)) < 1e-7 * len(x)


def test_default_kappa_scales_with_bin_width(device):
    # The same data in [-1, 1] and mapped to [0, 255] gives the same histogram.
    x = torch.rand(4000, dtype=torch.float64) * 2 - 1
    for bins in (10, 255):
        a = softhist_ext.histc(x.to(device), bins, -1.0, 1.0)
        b = softhist_ext.histc(((x + 1) * 127.5).to(device), bins, 0.0, 255.0)
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        expected = reference.histc(x, bins, -1.0, 1.0, kappa=4.0 * bins / 2.0)
        torch.testing.assert_close(a.cpu(), expected, rtol=1e-10, atol=1e-10)


def test_auto_range_is_the_range_of_finite_samples(device):
    x = torch.randn(1000, dtype=torch.float64)
    lo, hi = x.min().item(), x.max().item()
    x_bad = torch.cat([x, torch.tensor([math.nan, math.inf, -math.inf], dtype=torch.float64)])
    out = softhist_ext.histc(x_bad.to(device), 30, 0.0, 0.0, 25.0).cpu()
    torch.testing.assert_close(out, reference.histc(x, 30, lo, hi, 25.0))
    # min == max != 0 also means "from the data", as in torch.histc.
    out2 = softhist_ext.histc(x.to(device), 30, 3.0, 3.0, 25.0).cpu()
    torch.testing.assert_close(out2, out)


def test_auto_range_of_a_constant_is_widened_by_one(device):
    x = torch.full((50,), 2.0, dtype=torch.float64)
    out = softhist_ext.histc(x.to(device), 5, kappa=1e4).cpu()
    torch.testing.assert_close(out, torch.histc(x, 5))  # range [1, 3]
    torch.testing.assert_close(out, torch.tensor([0.0, 0.0, 50.0, 0.0, 0.0], dtype=torch.float64))


def test_the_sharpest_kernel_splits_a_sample_on_an_edge(device):
    # kappa * width 1e12 reaches 4e-11 bins, under half an ulp of 900000: the
    # window still starts below the sample, whose mass the two bins share.
    x = torch.tensor([900000.0], dtype=torch.float64, device=device)
    out = softhist_ext.histc(x, 1_000_000, 0.0, 1e6, kappa=1e12).cpu()
    assert out[899_999].item() == 0.5 and out[900_000].item() == 0.5 and out.sum().item() == 1.0
    with pytest.raises(RuntimeError, match=r"kappa \* bin width = 1e\+13 is past 1e\+12.*kernel='hard'"):
        softhist_ext.histc(x, 1_000_000, 0.0, 1e6, kappa=1e13)


def test_a_kernel_too_sharp_for_the_bins_of_the_datas_range(device):
    # The data's range [0, 1e6] makes bins of width 1: kappa 1e13 is past 1e12
    # there. The CPU raises as for a given range; a GPU, which resolves the
    # range on the device, caps kappa * width at 1e12.
    x = torch.tensor([0.0, 900000.0, 1e6], dtype=torch.float64, device=device)
    if x.is_cpu:
        with pytest.raises(RuntimeError, match=r"kappa \* bin width = 1e\+13 is past 1e\+12.*kernel='hard'"):
            softhist_ext.histc(x, 1_000_000, kappa=1e13)
        return
    capped = softhist_ext.histc(x, 1_000_000, kappa=1e13).cpu()
    torch.testing.assert_close(capped, softhist_ext.histc(x, 1_000_000, kappa=1e12).cpu(), rtol=0, atol=0)
    assert capped[899_999].item() == 0.5 and capped[900_000].item() == 0.5


def test_nan_and_inf_contribute_nothing(device):
    x = torch.randn(500, dtype=torch.float64)
    bad = torch.tensor([math.nan, math.inf, -math.inf, 1e300, -1e300], dtype=torch.float64)
    mixed = torch.cat([x[:250], bad, x[250:]])
    for dtype in (torch.float64, torch.float32):
        a = softhist_ext.histc(mixed.to(dtype).to(device), 16, -2.0, 2.0)
        b = softhist_ext.histc(x.to(dtype).to(device), 16, -2.0, 2.0)
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-5)


def test_empty_input_gives_zeros(device):
    for dtype in TOL:
        out = softhist_ext.histc(torch.empty(0, 3, dtype=dtype, device=device), 5, -1.0, 1.0)
        assert out.dtype == dtype and out.shape == (5,) and not out.any()
    # Auto-range of nothing: torch.histc's [-1, 1], still zeros.
    assert not softhist_ext.histc(torch.empty(0, device=device), 5).any()


def test_any_shape_is_flattened_and_noncontiguous_works(device):
    x = torch.randn(6, 7, 8, dtype=torch.float64, device=device)
    flat = softhist_ext.histc(x.reshape(-1), 12, -2.0, 2.0)
    torch.testing.assert_close(softhist_ext.histc(x, 12, -2.0, 2.0), flat)
    xt = x.transpose(0, 2)
    assert not xt.is_contiguous()
    torch.testing.assert_close(softhist_ext.histc(xt, 12, -2.0, 2.0), flat)
    strided = x.reshape(-1)[::3]
    torch.testing.assert_close(
        softhist_ext.histc(strided, 12, -2.0, 2.0),
        softhist_ext.histc(strided.contiguous(), 12, -2.0, 2.0),
    )


def test_samples_outside_the_range(device):
    x = torch.tensor([-100.0, -3.0, -1.0, 0.0, 1.0, 3.0, 100.0], dtype=torch.float64)
    out = softhist_ext.histc(x.to(device), 4, -1.0, 1.0, 3.0).cpu()
    torch.testing.assert_close(out, reference.histc(x, 4, -1.0, 1.0, 3.0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", list(softhist_ext.KERNELS))
@pytest.mark.parametrize("kappa", [1.0, 2.0, 4.0, 8.0, 30.0])  # windows of 2 to 40 bins
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_windows_overlapping_in_part(device, kernel, kappa, dtype):
    # Few samples (one accumulator), each 1 to 7 bins left of the one before:
    # every window's add overlaps the next one's in part.
    steps = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 1.5, 3.5, 6.5] * 2)
    x = (90.3 - steps.cumsum(0)).to(dtype)
    out = softhist_ext.histc(x.to(device), 96, 0.0, 96.0, kappa, kernel=kernel)
    expected = reference.histc(x.double(), 96, 0.0, 96.0, kappa, kernel)
    torch.testing.assert_close(out.cpu().double(), expected, **TOL[dtype])


@pytest.mark.parametrize("kappa", [1e-3, 0.05])
def test_kernel_wider_than_the_range(device, kappa):
    # Every sample reaches every bin.
    x = torch.randn(2000, dtype=torch.float64) * 3
    out = softhist_ext.histc(x.to(device), 9, -1.0, 1.0, kappa).cpu()
    torch.testing.assert_close(out, reference.histc(x, 9, -1.0, 1.0, kappa), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype, kernel", [(torch.float32, "logistic"), (torch.float64, "logistic"),
                                           (torch.float64, "gaussian")])
def test_result_does_not_depend_on_thread_count(dtype, kernel):
    # (float64: 4e6 samples take the fine pieces, whatever the thread count.)
    x = torch.randn(4_000_000, dtype=dtype)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(softhist_ext.histc(x, 256, -4.0, 4.0, kernel=kernel))
    finally:
        torch.set_num_threads(threads)
    for r in results[1:]:
        assert torch.equal(r, results[0])


def _over_thread_counts(run):
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(run())
    finally:
        torch.set_num_threads(threads)
    return results


def test_gradients_and_normalised_results_do_not_depend_on_thread_count():
    # Sums over more than 32768 terms into one number had followed torch's
    # per-thread parts: kappa's, the range's and the edges' gradients (a
    # float64 dot over the samples, also with create_graph), density over
    # many bins and its range's gradient, and mutual information at 256 bins.
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(300_000, generator=gen, dtype=torch.float64)
    y = torch.rand(300_000, generator=gen, dtype=torch.float64)
    rows = torch.rand(200, 1000, generator=gen)
    a, b = torch.rand(1, 1, 64, 64, 64, generator=gen), torch.rand(1, 1, 64, 64, 64, generator=gen)

    def run():
        k, lo, hi = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (40.0, 0.0, 1.0))
        edges = torch.tensor([0.0, 0.3, 0.35, 1.0], dtype=torch.float64, requires_grad=True)
        joint = softhist_ext.histc2d(x, y, 10, (lo, 0.0), (hi, 1.0), (k, None), "bspline")
        uneven = softhist_ext.histogramdd(torch.stack([x, y], -1), [edges, torch.linspace(0, 1, 4, dtype=torch.float64)],
                                          kernel="bspline").hist
        weights = torch.arange(100.0, dtype=torch.float64).reshape(10, 10)
        first = torch.autograd.grad((joint * weights).sum() + uneven[0, 1], [k, lo, hi, edges], create_graph=True)
        second = torch.autograd.grad(first[0], [k])
        lo32, hi32 = torch.tensor(0.0, requires_grad=True), torch.tensor(1.0, requires_grad=True)
        dense = softhist_ext.histc(rows, 1000, lo32, hi32, kernel="box", dim=-1, density=True)
        range_grad = torch.autograd.grad((dense * torch.arange(1000.0)).sum(), [lo32, hi32])
        volume = softhist_ext.histogramdd(torch.rand(200_000, 3, generator=torch.Generator().manual_seed(1)),
                                          [64, 64, 64], [0.0, 1.0] * 3, kernel="bspline", density=True).hist
        ai = a.clone().requires_grad_()
        mi = softhist_ext.mutual_information(ai, b, bins=256)
        (mi_grad,) = torch.autograd.grad(mi.sum(), ai)
        return [*first, *second, *range_grad, volume, mi, mi_grad]

    results = _over_thread_counts(run)
    for r in results[1:]:
        for got, want in zip(r, results[0]):
            assert torch.equal(got, want)


def test_float32_precision_at_1e8_samples(device):
    # Accumulation is in float64 (CPU) or 64-bit fixed point (CUDA) per chunk:
    # 1e8 float32 samples stay within 1e-6 relative of the CPU's float64
    # computation (which the tests above pin to the dense formula).
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(100_000_000, generator=gen)
    out32 = softhist_ext.histc(x.to(device), 256, -4.0, 4.0, kappa=256.0).cpu()
    out64 = softhist_ext.histc(x.double(), 256, -4.0, 4.0, kappa=256.0)
    rel = ((out32.double() - out64).abs() / out64.clamp_min(1.0)).max().item()
    assert rel < 1e-6, rel


SMOOTH_KERNELS = list(softhist_ext.KERNELS)


@pytest.mark.parametrize("kernel", SMOOTH_KERNELS + ["hard"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conserve_mass_total_equals_torch_histc(device, kernel, dtype):
    # Samples on, near and outside both ends: in-range samples keep their
    # whole mass, the others add nothing, so the total is torch.histc's.
    x = torch.cat([torch.randn(997, dtype=dtype), torch.tensor([-1.0, 1.0, 1.0001], dtype=dtype)])
    for lo, hi in ((-1.0, 1.0), (0.0, 0.0), (-0.5, 3.0)):
        for bins in (1, 4, 10, 255):
            out = softhist_ext.histc(x.to(device), bins, lo, hi, kernel=kernel, conserve_mass=True)
            counted = torch.histc(x, bins, lo, hi).sum().item()
            assert abs(out.sum().item() - counted) <= 1e-9 * counted + (1e-3 if dtype == torch.float32 else 0)
    # The two samples of the issue: exact end counts, as torch.histc.
    ends = softhist_ext.histc(torch.tensor([0.0, 1.0], dtype=dtype, device=device), 4, kernel=kernel,
                              conserve_mass=True).cpu()
    assert ends.sum().item() == pytest.approx(2.0, abs=1e-6)
    assert ends[0] > 0.9 and ends[-1] > 0.9


@pytest.mark.parametrize("kernel", SMOOTH_KERNELS)
@pytest.mark.parametrize("bins,lo,hi,kappa", [(10, -1.0, 1.0, None), (3, -2.0, 2.0, 0.8), (64, 0.0, 255.0, 0.1),
                                              (1, -1.0, 1.0, 3.0)])
def test_conserve_mass_matches_dense_reference(device, kernel, bins, lo, hi, kappa):
    x = torch.randn(2, 700, dtype=torch.float64) * (hi - lo) / 3 + (hi + lo) / 2
    w = torch.rand_like(x)
    out = softhist_ext.histc(x.to(device), bins, lo, hi, kappa, kernel, w.to(device), dim=-1, conserve_mass=True)
    kappa_ref = kappa if kappa is not None else reference.default_kappa_width(kernel) * bins / (hi - lo)
    expected = reference.histc(x, bins, lo, hi, kappa_ref, kernel, w, dim=-1, conserve_mass=True)
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-10, atol=1e-10)
    out32 = softhist_ext.histc(x.float().to(device), bins, lo, hi, kappa, kernel, w.float().to(device), dim=-1,
                               conserve_mass=True)
    torch.testing.assert_close(out32.cpu().double(), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kernel", SMOOTH_KERNELS)
def test_conserve_mass_gradients_match_dense_reference(device, kernel):
    # Samples inside the range (the in-range mask is a step at min and max).
    x = (torch.rand(40, dtype=torch.float64) * 1.9 - 0.95).to(device).requires_grad_()
    w = torch.rand(40, dtype=torch.float64, device=device, requires_grad=True)

    def f(x, w):
        return softhist_ext.histc(x, 6, -1.0, 1.0, 4.0, kernel, w, conserve_mass=True)

    assert torch.autograd.gradcheck(f, (x, w))
    assert torch.autograd.gradgradcheck(f, (x, w))
    g = torch.randn(6, dtype=torch.float64, device=device)
    ours = torch.autograd.grad(f(x, w), (x, w), g)
    dense = torch.autograd.grad(reference.histc(x, 6, -1.0, 1.0, 4.0, kernel, w, conserve_mass=True), (x, w), g)
    for a, b in zip(ours, dense):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    y = x.detach().flip(0).requires_grad_()

    def f2(x, y, w):
        return softhist_ext.histc2d(x, y, (5, 4), -1.0, 1.0, 4.0, kernel, w, conserve_mass=True)

    assert torch.autograd.gradcheck(f2, (x, y, w))
    assert torch.autograd.gradgradcheck(f2, (x, y, w))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_hard_kernel_equals_torch_histc_bit_for_bit(device, dtype):
    # Samples on and within rounding of inner edges land where torch.histc
    # (on the same device) puts them: the bin is computed in torch's arithmetic.
    x = torch.linspace(0, 1, 1001, dtype=dtype, device=device)
    assert torch.equal(softhist_ext.histc(x, 10, 0, 1, kernel="hard"), torch.histc(x, 10, 0, 1))
    gen = torch.Generator().manual_seed(1)
    for _ in range(60):
        bins = int(torch.randint(1, 300, (), generator=gen))
        lo = float(torch.randn((), generator=gen) * 10)
        hi = lo + float(torch.rand((), generator=gen) * 20 + 1e-3)
        xs = torch.linspace(lo - 1, hi + 1, 1500, dtype=torch.float64).to(dtype).to(device)
        expected = torch.histc(xs, bins, lo, hi)
        assert torch.equal(softhist_ext.histc(xs, bins, lo, hi, kernel="hard"), expected), (bins, lo, hi)
        st = softhist_ext.histc(xs, bins, lo, hi, straight_through=True)
        assert torch.equal(st, expected), (bins, lo, hi)


def test_the_library_lists_its_kernels_and_their_documented_defaults():
    # The one list (csrc/kernels.h), asked of the library; the defaults are
    # the README's kernel table ("default kappa * width").
    documented = {"logistic": 4.0, "gaussian": 2.0, "triangular": 1.0, "bspline": 1.0, "box": 2.0}
    assert softhist_ext.KERNELS == tuple(documented) and "hard" not in softhist_ext.KERNELS
    assert {k: reference.default_kappa_width(k) for k in documented} == documented
    for kernel in softhist_ext.KERNELS:  # each has its dense formula
        reference.kernel_cdf(kernel, torch.zeros(1))
    names = "".join(f'"{k}", ' for k in softhist_ext.KERNELS)
    with pytest.raises(RuntimeError, match=f'one of {names}or "hard"'):
        softhist_ext.histc(torch.zeros(3), 4, kernel="cosine")


def test_box_at_its_default_kappa_is_linear_binning_and_its_gather_is_np_interp():
    # The hat function of the distance to each bin centre (linear
    # interpolation weights), written out; the gather then interpolates a
    # table linearly between bin centres, clamped beyond the outer centres
    # when the outer bins are open, as np.interp.
    np = pytest.importorskip("numpy")
    x = torch.cat([torch.rand(2000, dtype=torch.float64) * 10 - 1, torch.arange(0.0, 9.5, 0.5, dtype=torch.float64)])
    centres = torch.arange(8, dtype=torch.float64) + 0.5
    inside = (x >= 0) & (x <= 8)
    hat = (1 - (x[:, None] - centres).abs()).clamp_min(0)
    hat[:, 0] = torch.where(x < 0.5, 1.0, hat[:, 0])
    hat[:, -1] = torch.where(x > 7.5, 1.0, hat[:, -1])
    expected = (hat * inside[:, None]).sum(0)
    actual = softhist_ext.histc(x, 8, 0.0, 8.0, kernel="box", conserve_mass=True)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    table = torch.rand(8, dtype=torch.float64)
    params = torch.ops.softhist.params(x, 8, 0.0, 8.0, None, "box", True)[None]
    looked_up = torch.ops.softhist.gather([x[inside]], table, params, [0], "box")
    expected = np.interp(x[inside].numpy(), centres.numpy(), table.numpy())
    np.testing.assert_allclose(looked_up.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1000, 20_000])  # the windows; the Chebyshev pieces
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("conserve_mass", [False, True])
def test_box_on_its_knots_takes_the_derivative_on_the_right(n, dtype, conserve_mass):
    # Intensities 0..255 over 256 bins centred on them: at its default kappa
    # (2 per unit here) the box's knots are the bin centres, so every sample
    # sits on two. Its mass is its own bin's, and its derivative the one on
    # the right: moving right sends mass to the next bin at kappa / 2 (none
    # leaves an open last bin). -1 (min less the half-width) reaches bin 0 so.
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n,), generator=gen).to(dtype)
    x[:4] = torch.tensor([-1.0, 0.0, 255.0, 256.0])
    coef = torch.randn(256, dtype=torch.float64, generator=gen)
    xr = x.clone().requires_grad_()
    hist = softhist_ext.histc(xr, 256, -0.5, 255.5, kernel="box", conserve_mass=conserve_mass)
    (grad,) = torch.autograd.grad((hist.double() * coef).sum(), xr)
    torch.testing.assert_close(hist, torch.histc(x, 256, -0.5, 255.5), **TOL[dtype])
    j = x.long()
    padded = torch.cat([coef.new_zeros(1), coef, coef.new_zeros(1)])  # no bin: 0
    expected = (padded[j.clamp_max(255) + 2] - padded[j.clamp_max(255) + 1]).to(dtype)
    if conserve_mass:
        expected = torch.where((j < 0) | (j >= 255), 0, expected)
    else:
        expected = torch.where(j > 255, 0, expected)
    torch.testing.assert_close(grad, expected, **TOL[dtype])

    # The edges' and kappa's gradients (from the forward's edge sums where it
    # takes the pieces) against autograd through the dense formula.
    params = torch.ops.softhist.params(x, 256, -0.5, 255.5, None, "box", conserve_mass)[None]
    taken = torch.ops.softhist.scatter_edge_sums(x[None], None, params, 256, "box")[2]
    assert bool(taken) == (n > 5000)
    edges = torch.linspace(-0.5, 255.5, 257, dtype=torch.float64)
    grads = []
    for histogram in (lambda e, k: softhist_ext.histogram(x.double(), e, kappa=k, kernel="box")[0],
                      lambda e, k: reference.histogram_edges(x, e, k, "box")):
        e, k = edges.clone().requires_grad_(), torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        grads.append(torch.autograd.grad((histogram(e, k) * coef).sum(), (e, k)))
    for ours, dense in zip(*grads):
        torch.testing.assert_close(ours, dense, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel", SMOOTH_KERNELS)
@pytest.mark.parametrize("kappa_width", [0.5, 1.0, 4.0, 30.0, 1000.0])
@pytest.mark.parametrize("lo", [0.0, 1e6])
def test_every_order_matches_dense_reference_across_widths_and_far_ranges(kernel, kappa_width, lo):
    # The window loops evaluate the CDF and its derivatives at equally spaced
    # edges (the logistic by a recurrence over them): values, gradient and
    # second derivative against the dense formula, for kernels spanning half
    # a bin to hundreds of bins, near 0 and at a range far from it.
    bins, hi = 32, lo + 1.0
    kappa = kappa_width * bins / (hi - lo)
    gen = torch.Generator().manual_seed(3)
    x = (lo + torch.rand(500, generator=gen, dtype=torch.float64) * 1.2 - 0.1).requires_grad_()
    g = torch.randn(bins, generator=gen, dtype=torch.float64)

    def first_and_second(h, x):
        (grad,) = torch.autograd.grad(h, x, g, create_graph=True)
        if not grad.requires_grad:  # a piecewise-linear CDF (box): no second derivative
            return h.detach(), grad, torch.zeros_like(grad)
        (second,) = torch.autograd.grad(grad.sum(), x)
        return h.detach(), grad.detach(), second

    ours = first_and_second(softhist_ext.histc(x, bins, lo, hi, kappa, kernel), x)
    dense = first_and_second(reference.histc(x, bins, lo, hi, kappa, kernel), x)
    for order, (a, b) in enumerate(zip(ours, dense)):
        scale = kappa**order  # each derivative order brings a factor kappa
        torch.testing.assert_close(a / scale, b / scale, rtol=1e-9, atol=1e-9, msg=f"order {order}")
    x32 = x.detach().float()
    torch.testing.assert_close(
        softhist_ext.histc(x32, bins, lo, hi, kappa, kernel).double(),
        reference.histc(x32.double(), bins, lo, hi, kappa, kernel), rtol=1e-5, atol=2e-4)


def test_float64_gaussian_tail_masses_keep_full_relative_precision():
    # The float64 gaussian CDF's own erfc (a polynomial, so loops vectorise):
    # the mass of a one-unit bin from a sample up to 8 standard deviations
    # below it, Phi(x) - Phi(x - 1), against mpmath. Both are tail values, so
    # relative errors don't cancel out; the bound is the conditioning of
    # erfc(z) in its rounded argument z = t / sqrt(2), 2 z^2 ulp (here about
    # 1e-14, as with libm's erfc), not a loss in the evaluation.
    mpmath = pytest.importorskip("mpmath")  # a dependency of torch (through sympy)
    mpmath.mp.dps = 30
    x = torch.linspace(-8.0, 0.0, 161, dtype=torch.float64)
    ours = softhist_ext.histc(x[:, None], 1, 0.0, 1.0, 1.0, "gaussian", dim=-1)[:, 0]
    exact = torch.tensor([float(mpmath.ncdf(v) - mpmath.ncdf(v - 1)) for v in x.tolist()],
                         dtype=torch.float64)
    z = (x - 1).abs() / math.sqrt(2)
    bound = 4 * z**2 * torch.finfo(torch.float64).eps + 1e-15
    assert ((ours - exact).abs() / exact <= bound).all()


@pytest.mark.parametrize("kernel", ["triangular", "bspline", "box"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite_weight_reaches_only_the_bins_of_its_kernels_mass(device, kernel, bad):
    # Samples on and near the range's ends, where windows are clamped inside
    # it: their masses past a compact kernel's support (0 in the dense
    # formula) had become NaN too. Among many samples (the pieces' and
    # pairs' paths hand such a block to the windows) and alone.
    f64 = torch.float64
    gen = torch.Generator().manual_seed(7)
    for x0, y0, z0 in [(1.0, 0.5, 0.0), (0.0, 0.97, 0.31), (0.53, 1.0, 1.0)]:
        for n in (1, 300_000):
            pts = torch.rand(n, 3, generator=gen, dtype=f64)
            pts[-1] = torch.tensor([x0, y0, z0], dtype=f64)
            w = torch.ones(n, dtype=f64)
            w[-1] = bad
            one = pts[-1:].T
            for axes in (1, 2, 3):
                coords = [pts[:, a].to(device) for a in range(axes)]
                bins, kappa = [8] * axes, [16.0] * axes
                params = torch.stack([torch.ops.softhist.params(c, 8, 0.0, 1.0, 16.0, kernel) for c in coords])
                out = torch.ops.softhist.scatter(coords, w.to(device), params, bins, [0] * axes, kernel).cpu()
                mass = reference.histogramdd([one[a] for a in range(axes)], bins, [0.0] * axes, [1.0] * axes,
                                             kappa, kernel)
                reached = ~torch.isfinite(out)
                assert torch.equal(reached, mass != 0), (x0, y0, z0, n, axes)


@pytest.mark.parametrize("kernel, peak", [("logistic", 0.25), ("gaussian", 0.3989), ("triangular", 1.0)])
def test_float32_sharp_kernel_error_is_the_readmes(kernel, peak):
    # A sample's place kappa * (x - edge) is rounded in float32 about
    # kappa * width from its window's first edge: masses off by about
    # 1e-7 * kappa * width times the kernel's peak density, worst near the
    # range's end (the README's figures, at kappa * width 1e4).
    kappa = 1e4 * 16  # (the kernel reaches 1e-5 past an edge, 2e-5 for the gaussian)
    x = (1.0 - torch.rand(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
         * 2e-5).float()
    ours = softhist_ext.histc(x[:, None], 16, 0.0, 1.0, kappa, kernel, dim=-1)  # (each sample's)
    exact = reference.histc(x.double()[:, None], 16, 0.0, 1.0, kappa, kernel, dim=-1)
    error = (ours.double() - exact).abs().max().item()
    assert 0.5e-7 * 1e4 * peak < error < 1e-7 * 1e4 * peak


def test_a_data_range_too_narrow_to_split_is_widened_about_its_midpoint():
    # [0, 1e-307] in 4 bins: widths under 2^-1020, where 1 / width and kappa
    # would overflow; torch.histc still counts, so the range is widened.
    x = torch.tensor([0.0, 1e-307], dtype=torch.float64)
    lo, hi, _, _ = torch.ops.softhist.params(x, 4, 0.0, 0.0, None, "hard").tolist()
    assert hi - lo == 4 * 2.0**-1020
    assert math.isclose((lo + hi) / 2, 0.5e-307, rel_tol=1e-12)
    assert softhist_ext.histc(x, 4, kernel="hard").sum().item() == 2
    with pytest.raises(RuntimeError, match="too narrow"):
        softhist_ext.histc(x, 4, 0.0, 1e-307)
