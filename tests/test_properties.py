"""Property tests: histc and histc2d against the dense reference over random
shapes, dtypes, ranges, kappas, kernels, weights and dims, with samples on
edges, huge, denormal and non-finite."""

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import softhist_ext
from softhist_ext import reference

KERNELS = list(softhist_ext.KERNELS)
DENORMAL = {torch.float64: 1e-310, torch.float32: 1e-40}
# Forward tolerance, relative and per unit of total |weight| (float32 kernel
# values carry ~1e-7 relative error each).
TOL = {torch.float64: 1e-9, torch.float32: 1e-5}

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def histc_cases(draw, dtypes=(torch.float64, torch.float32), max_bins_log2=20, finite_weights=False):
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(st.lists(st.integers(0, 4), min_size=0, max_size=3))
    numel = math.prod(shape)
    # Many bins with few samples keeps the dense N x bins reference small.
    big = draw(st.integers(0, 3)) == 0 and numel <= 4
    bins = 2 ** draw(st.integers(10, max_bins_log2)) if big else draw(st.integers(1, 40))
    auto_range = draw(st.integers(0, 5)) == 0
    if auto_range:
        lo = hi = 0.0
        gen_lo, gen_hi = -1.0, 1.0
    else:
        lo = draw(st.floats(-1e3, 1e3))
        hi = lo + 10 ** draw(st.floats(-2, 3))
        gen_lo, gen_hi = lo, hi
    kappa_width = draw(st.none() | st.floats(0.05, 1e4))
    kernel = draw(st.sampled_from(KERNELS))

    span = gen_hi - gen_lo
    specials = [0.0, 1e30, -1e30, DENORMAL[dtype], -DENORMAL[dtype], math.nan, math.inf, -math.inf]
    value = st.one_of(
        st.floats(-0.5, 1.5).map(lambda u: gen_lo + u * span),
        st.integers(0, bins).map(lambda j: gen_lo + j * span / bins),  # edges, min and max
        st.sampled_from([gen_lo, gen_hi]),
        st.sampled_from(specials),
    )
    values = draw(st.lists(value, min_size=numel, max_size=numel))
    x = torch.tensor(values, dtype=torch.float64).to(dtype).reshape(shape)

    weight = None
    if draw(st.booleans()):
        w = st.sampled_from([0.0, 1.0, -1.0, 2.5]) | st.floats(-3, 3)
        weight = torch.tensor(draw(st.lists(w, min_size=numel, max_size=numel)), dtype=dtype).reshape(shape)
    dims = [None] + list(range(-max(x.dim(), 1), max(x.dim(), 1)))
    dim = draw(st.sampled_from(dims))
    return dict(x=x, bins=bins, lo=lo, hi=hi, kappa_width=kappa_width, kernel=kernel, weight=weight, dim=dim)


def resolved_range(x, lo, hi, bins):
    """The range histc uses: the given one, or that of the finite samples,
    a point widened by 1 on each side, and bins too narrow to represent
    (or subnormal) widened about the midpoint to 2^-50 of the range's
    magnitude, or 2^-1020."""
    if lo != hi:
        return lo, hi
    x = x.detach()
    finite = x[torch.isfinite(x)]
    if finite.numel():
        lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    width = (hi - lo) / bins
    if not (width >= 2.0**-1020 and lo + width > lo and hi - width < hi):
        mid, step = 0.5 * lo + 0.5 * hi, max(max(abs(lo), abs(hi)) * 2.0**-50, 2.0**-1020)
        lo, hi = mid - 0.5 * bins * step, mid + 0.5 * bins * step
    return lo, hi


def run_both(case, requires_grad=False):
    """histc on the case and the float64 dense reference on the same values."""
    x, w, bins, dim, kernel = case["x"], case["weight"], case["bins"], case["dim"], case["kernel"]
    lo, hi = resolved_range(x, case["lo"], case["hi"], bins)
    kappa = None if case["kappa_width"] is None else case["kappa_width"] * bins / (hi - lo)
    out = softhist_ext.histc(x, bins, case["lo"], case["hi"], kappa, kernel=kernel, weight=w, dim=dim)
    # The reference has no 0-d slices: a 0-d input is one row of one sample.
    x_ref = x.detach().double().reshape(-1) if x.dim() == 0 else x.detach().double()
    w_ref = None if w is None else w.detach().double().reshape(x_ref.shape)
    ref_dim = None if (dim is None or x.dim() == 0) else dim
    if requires_grad:
        x_ref.requires_grad_(True)
        if w_ref is not None:
            w_ref.requires_grad_(True)
    expected = reference.histc(x_ref, bins, lo, hi, kappa, kernel, w_ref, ref_dim)
    return out, expected, x_ref, w_ref, kappa


def total_weight(case):
    x, w = case["x"], case["weight"]
    finite = torch.isfinite(x)
    return float((w.double().abs() if w is not None else torch.ones_like(x, dtype=torch.float64))[finite].sum())


@settings(max_examples=400, **SETTINGS)
@given(histc_cases())
def test_histc_matches_dense_reference(case):
    result = run_both(case)
    out, expected = result[0], result[1]
    x = case["x"]
    expected_shape = (case["bins"],) if case["dim"] is None or x.dim() == 0 else (
        x.shape[: case["dim"] % x.dim()] + (case["bins"],) + x.shape[case["dim"] % x.dim() + 1:])
    assert out.shape == expected_shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()
    # Edges (here and in the reference) and float32 kernel offsets are exact
    # only to the dtype's resolution near the range: a kernel sharper than that
    # ulp moves mass by about kappa * ulp.
    lo, hi = resolved_range(x, case["lo"], case["hi"], case["bins"])
    kappa = result[4] if result[4] is not None else 4.0 * case["bins"] / (hi - lo)
    ulp = float(torch.finfo(x.dtype).eps) * (max(abs(lo), abs(hi)) + (hi - lo))
    tol = TOL[x.dtype] + 2 * kappa * ulp
    torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol * (1 + total_weight(case)))


def dense_input_grad(x, w, g, bins, lo, hi, kappa, kernel, dim):
    """d(sum(g * histc))/dx = sum_b g_b w kappa (k(t_b) - k(t_{b+1})) for finite x."""
    rows = dim is None or x.dim() == 0
    xs = x.reshape(-1) if rows else x.movedim(dim, -1)
    ws = torch.ones_like(xs) if w is None else (w.reshape(-1) if rows else w.movedim(dim, -1))
    gs = g if rows else g.movedim(dim, -1)
    finite = torch.isfinite(xs)
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    k = reference.kernel_density(kernel, kappa * (torch.where(finite, xs, 0)[..., None] - edges))
    grad = (kappa * (k[..., :-1] - k[..., 1:]) * gs[..., None, :]).sum(-1) * ws * finite
    return grad.reshape(x.shape) if rows else grad.movedim(-1, dim)


@settings(max_examples=150, **SETTINGS)
@given(histc_cases(dtypes=(torch.float64,), max_bins_log2=14))
def test_gradients_match_dense_reference(case):
    x = case["x"].clone().requires_grad_(True)
    w = None if case["weight"] is None else case["weight"].clone().requires_grad_(True)
    result = run_both(dict(case, x=x, weight=w), requires_grad=True)
    out, expected, x_ref, w_ref, kappa = result
    g = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)
    (out * g).sum().backward()
    lo, hi = resolved_range(case["x"], case["lo"], case["hi"], case["bins"])
    kappa = kappa if kappa is not None else reference.default_kappa_width(case["kernel"]) * case["bins"] / (hi - lo)
    wd = None if w is None else w.detach()
    x_grad_ref = dense_input_grad(case["x"], wd, g, case["bins"], lo, hi, kappa, case["kernel"], case["dim"])
    # The density scales as kappa, the gradient as kappa * |weight| * |g| per bin.
    scale = kappa * (1 + (wd.abs().max().item() if wd is not None and wd.numel() else 1))
    assert torch.isfinite(x.grad).all()
    assert (x.grad[~torch.isfinite(case["x"])] == 0).all()
    # Positions are exact to the range's float64 resolution: where bins are a
    # few ulps wide (a range widened about 1e30) kernel values move by about
    # kappa * ulp relative.
    ulp = float(torch.finfo(torch.float64).eps) * (max(abs(lo), abs(hi)) + (hi - lo))
    torch.testing.assert_close(x.grad, x_grad_ref, rtol=1e-7 + 8 * kappa * ulp, atol=1e-9 * scale)
    if w is not None:
        # The weight's gradient is each sample's bin masses: the reference's autograd.
        (expected * g).sum().backward()
        w_grad_ref = w_ref.grad.reshape(w.shape) if w_ref.grad is not None else torch.zeros_like(w)
        # Bin masses: exact to the same position resolution as the forward.
        torch.testing.assert_close(w.grad, w_grad_ref, rtol=1e-9, atol=1e-9 + 2 * kappa * ulp)


@st.composite
def narrow_cases(draw):
    """float32 ranges a few ulps wide: bins narrower than float32 can resolve."""
    centre = draw(st.sampled_from([1.0, -5.0, 1e3, 1e6, 3.0e-20]))
    ulp = float(torch.finfo(torch.float32).eps) * abs(centre)
    lo = float(torch.tensor(centre, dtype=torch.float32))
    hi = lo + draw(st.integers(1, 8)) * ulp
    steps = draw(st.lists(st.integers(-3, 12), min_size=1, max_size=12))
    x = torch.tensor([lo + s * ulp for s in steps], dtype=torch.float64).float()
    bins = draw(st.integers(1, 64))
    kernel = draw(st.sampled_from(KERNELS))
    return x, bins, lo, hi, kernel


@settings(max_examples=120, **SETTINGS)
@given(narrow_cases())
def test_bins_narrower_than_float32_resolution(case):
    x, bins, lo, hi, kernel = case
    try:
        out = softhist_ext.histc(x, bins, lo, hi, kernel=kernel)
    except RuntimeError as e:
        assert "too narrow" in str(e)
        return
    expected = reference.histc(x.double(), bins, lo, hi, None, kernel)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5 * (1 + len(x)))


@st.composite
def histc2d_cases(draw):
    n = draw(st.integers(0, 12))
    bins = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    lo = (draw(st.floats(-10, 10)), draw(st.floats(-10, 10)))
    hi = (lo[0] + 10 ** draw(st.floats(-1, 2)), lo[1] + 10 ** draw(st.floats(-1, 2)))
    kw = (draw(st.floats(0.05, 1e4)), draw(st.floats(0.05, 1e4)))
    kappa = tuple(kw[a] * bins[a] / (hi[a] - lo[a]) for a in range(2))
    kernel = draw(st.sampled_from(KERNELS))

    def axis(a):
        span = hi[a] - lo[a]
        v = st.one_of(
            st.floats(-0.5, 1.5).map(lambda u: lo[a] + u * span),
            st.integers(0, bins[a]).map(lambda j: lo[a] + j * span / bins[a]),
            st.sampled_from([1e30, -1e30, 1e-310, math.nan, math.inf, -math.inf]),
        )
        return torch.tensor(draw(st.lists(v, min_size=n, max_size=n)), dtype=torch.float64)

    x, y = axis(0), axis(1)
    weight = None
    if draw(st.booleans()):
        weight = torch.tensor(draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n)), dtype=torch.float64)
    return x, y, bins, lo, hi, kappa, kernel, weight


def finite_pairs(x, y, weight):
    """The dense reference has no NaN handling: drop the pairs histc2d skips."""
    keep = torch.isfinite(x) & torch.isfinite(y)
    return x[keep], y[keep], None if weight is None else weight[keep]


@settings(max_examples=100, **SETTINGS)
@given(histc2d_cases())
def test_histc2d_matches_dense_reference(case):
    x, y, bins, lo, hi, kappa, kernel, weight = case
    out = softhist_ext.histc2d(x, y, bins, lo, hi, kappa, kernel, weight)
    xs, ys, ws = finite_pairs(x, y, weight)
    expected = reference.histc2d(xs, ys, bins, lo, hi, kappa, kernel, ws)
    total = float(weight.abs().sum()) if weight is not None else len(x)
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-9 * (1 + total))


# Non-finite weights. The dense reference multiplies every sample's masses by
# its weight, so 0 * inf makes it NaN everywhere; histc multiplies only the
# bins in a sample's kernel window. Documented behaviour, asserted below:
# a non-finite sample adds nothing whatever its weight; a finite sample of
# weight NaN/±inf makes the bins its kernel reaches NaN/±inf, and leaves bins
# beyond a compact kernel's support exact.
NONFINITE = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bad", NONFINITE)
def test_nonfinite_weight_of_a_nonfinite_sample_adds_nothing(kernel, bad):
    x = torch.tensor([0.1, math.nan, 0.5, math.inf, -math.inf, 0.9], dtype=torch.float64)
    w = torch.tensor([1.0, bad, 2.0, bad, bad, -1.0], dtype=torch.float64)
    out = softhist_ext.histc(x, 10, 0.0, 1.0, kernel=kernel, weight=w)
    keep = torch.isfinite(x)
    expected = reference.histc(x[keep], 10, 0.0, 1.0, None, kernel, w[keep])
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", ["triangular", "bspline"])
@pytest.mark.parametrize("bad", NONFINITE)
def test_nonfinite_weight_reaches_only_its_window(kernel, bad):
    x = torch.tensor([0.05, 0.55, 0.95], dtype=torch.float64)
    w = torch.tensor([1.0, bad, 2.0], dtype=torch.float64)
    out = softhist_ext.histc(x, 20, 0.0, 1.0, kernel=kernel, weight=w)
    mass = reference.histc(x[1:2], 20, 0.0, 1.0, None, kernel)
    rest = reference.histc(x[[0, 2]], 20, 0.0, 1.0, None, kernel, w[[0, 2]])
    reached = mass > 1e-12  # the reference leaves ~1e-32 of rounding past the support
    if math.isnan(bad):
        assert out[reached].isnan().all()
    else:
        assert (out[reached] == bad).all()
    # Beyond the support and one bin of window margin the bins are exact.
    far = (torch.arange(20) - 11).abs() > 4
    torch.testing.assert_close(out[far], rest[far], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_nonfinite_sample_with_nonfinite_weight_gets_zero_gradient(bad):
    x = torch.tensor([0.5, math.nan, math.inf], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.0, bad, bad], dtype=torch.float64, requires_grad=True)
    softhist_ext.histc(x, 10, 0.0, 1.0, weight=w).sum().backward()
    assert (x.grad[1:] == 0).all()
    assert (w.grad[1:] == 0).all()


# 16-bit input. The kernel values are computed in float32 and summed in
# float64, so the float32 tolerance applies, plus one rounding of each bin to
# the 16-bit output: half its relative resolution eps, or half the subnormal
# spacing (smallest normal * eps) near 0.
DENORMAL.update({torch.float16: 1e-7, torch.bfloat16: 1e-40})


@settings(max_examples=150, **SETTINGS)
@given(histc_cases(dtypes=(torch.float16, torch.bfloat16)))
def test_16bit_input_matches_float64_reference(case):
    result = run_both(case)
    out, expected = result[0], result[1]
    x = case["x"]
    assert out.dtype == x.dtype and torch.isfinite(out).all()
    lo, hi = resolved_range(x, case["lo"], case["hi"], case["bins"])
    kappa = result[4] if result[4] is not None else 4.0 * case["bins"] / (hi - lo)
    ulp32 = float(torch.finfo(torch.float32).eps) * (max(abs(lo), abs(hi)) + (hi - lo))
    tol = TOL[torch.float32] + 2 * kappa * ulp32
    info = torch.finfo(x.dtype)
    torch.testing.assert_close(out.double(), expected.double(), rtol=info.eps,
                               atol=tol * (1 + total_weight(case)) + info.smallest_normal * info.eps)


def reference_args(case):
    """The case's range and kappa as the reference takes them, and its input
    in float64 with 0-d made one row."""
    x, w = case["x"], case["weight"]
    lo, hi = resolved_range(x, case["lo"], case["hi"], case["bins"])
    kappa = None if case["kappa_width"] is None else case["kappa_width"] * case["bins"] / (hi - lo)
    x_ref = x.detach().double().reshape(-1) if x.dim() == 0 else x.detach().double()
    w_ref = None if w is None else w.detach().double().reshape(x_ref.shape)
    dim = None if (case["dim"] is None or x.dim() == 0) else case["dim"]
    return x_ref, w_ref, lo, hi, kappa, dim


@settings(max_examples=100, **SETTINGS)
@given(histc_cases(max_bins_log2=14), st.booleans())
def test_density_matches_dense_reference(case, weighted):
    # Non-negative weights: a row whose masses cancel has no density to compare.
    w = case["weight"].abs() if weighted and case["weight"] is not None else None
    case = dict(case, weight=w)
    x_ref, w_ref, lo, hi, kappa, dim = reference_args(case)
    assume(hi > lo)  # a point at 1e30 widened by 1: histc refuses it (run_both)
    mass = reference.histc(x_ref, case["bins"], lo, hi, kappa, case["kernel"], w_ref, dim)
    total = mass.sum(-1 if dim is None else dim)
    if total.numel() == 0 or float(total.min()) < 0.5:
        return  # rows with little mass in range: the density is a ratio of roundings
    out = softhist_ext.histc(case["x"], case["bins"], case["lo"], case["hi"], kappa,
                             kernel=case["kernel"], weight=w, dim=case["dim"], density=True)
    expected = reference.histc(x_ref, case["bins"], lo, hi, kappa, case["kernel"], w_ref, dim, density=True)
    # A mass error e (per bin and in total, as above) moves the density by at
    # most e * (S + W) / (S^2 * width), with row mass S >= 0.5, total weight W.
    x = case["x"]
    ulp = float(torch.finfo(x.dtype).eps) * (max(abs(lo), abs(hi)) + (hi - lo))
    k = kappa if kappa is not None else 4.0 * case["bins"] / (hi - lo)
    err = (TOL[x.dtype] + 2 * k * ulp) * (1 + total_weight(case))
    s, big_w, width = float(total.min()), total_weight(case), (hi - lo) / case["bins"]
    torch.testing.assert_close(out.double().reshape(expected.shape), expected, rtol=TOL[x.dtype],
                               atol=2 * err * (s + big_w) / (s * s * width))


@st.composite
def straight_through_cases(draw):
    """Samples inside bins (not within rounding of an inner edge, where
    torch.histc's float edges decide), exactly on min and max as rounded to the
    dtype, outside the range and not finite."""
    dtype = draw(st.sampled_from([torch.float64, torch.float32]))
    bins = draw(st.integers(1, 40))
    lo = draw(st.floats(-1e3, 1e3))
    hi = lo + 10 ** draw(st.floats(-2, 3))
    width = (hi - lo) / bins
    assume(width > 1000 * float(torch.finfo(dtype).eps) * max(abs(lo), abs(hi), 1e-30))
    inside = st.tuples(st.integers(0, bins - 1), st.floats(0.1, 0.9)).map(lambda t: lo + (t[0] + t[1]) * width)
    value = inside | st.sampled_from([lo, hi, lo - width, hi + width, math.nan, math.inf, -math.inf])
    rows = draw(st.integers(1, 3))
    n = draw(st.integers(0, 30))
    values = draw(st.lists(value, min_size=rows * n, max_size=rows * n))
    x = torch.tensor(values, dtype=torch.float64).to(dtype).reshape(rows, n)
    weight = None
    if draw(st.booleans()):
        weight = torch.tensor(draw(st.lists(st.floats(-3, 3), min_size=rows * n, max_size=rows * n)),
                              dtype=dtype).reshape(rows, n)
    kernel = draw(st.sampled_from(KERNELS))
    kappa_width = draw(st.floats(0.5, 50))
    return x, weight, bins, lo, hi, kappa_width * bins / (hi - lo), kernel


@settings(max_examples=100, **SETTINGS)
@given(straight_through_cases())
def test_straight_through_counts_as_torch_histc_with_the_kernel_gradient(case):
    x, w, bins, lo, hi, kappa, kernel = case
    x = x.clone().requires_grad_(True)
    w = None if w is None else w.clone().requires_grad_(True)
    out = softhist_ext.histc(x, bins, lo, hi, kappa, kernel=kernel, weight=w, dim=-1, straight_through=True)
    if w is None:
        for row in range(x.shape[0]):
            xs = x.detach()[row]
            expected = torch.histc(xs[torch.isfinite(xs)], bins, lo, hi)
            assert torch.equal(out.detach()[row], expected), (row, out[row], expected)
    if x.dtype != torch.float64:
        return
    g = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)
    (out * g).sum().backward()
    wd = None if w is None else w.detach()
    x_grad_ref = dense_input_grad(x.detach(), wd, g, bins, lo, hi, kappa, kernel, -1)
    scale = kappa * (1 + (wd.abs().max().item() if wd is not None and wd.numel() else 1))
    # Positions are exact to the range's float64 resolution: where bins are a
    # few ulps wide (a range widened about 1e30) kernel values move by about
    # kappa * ulp relative.
    ulp = float(torch.finfo(torch.float64).eps) * (max(abs(lo), abs(hi)) + (hi - lo))
    torch.testing.assert_close(x.grad, x_grad_ref, rtol=1e-7 + 8 * kappa * ulp, atol=1e-9 * scale)
    if w is not None:
        finite = torch.isfinite(x.detach())
        edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
        cdf = reference.kernel_cdf(kernel, kappa * (torch.where(finite, x.detach(), 0)[..., None] - edges))
        w_grad_ref = ((cdf[..., :-1] - cdf[..., 1:]) * g[:, None, :]).sum(-1) * finite
        torch.testing.assert_close(w.grad, w_grad_ref, rtol=1e-9, atol=1e-9)


def dense_masses_and_slopes(v, bins, lo, hi, kappa, kernel):
    """Each sample's bin masses and their derivatives in the sample, N x bins."""
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    t = kappa * (v[:, None] - edges)
    cdf, k = reference.kernel_cdf(kernel, t), reference.kernel_density(kernel, t)
    return cdf[:, :-1] - cdf[:, 1:], kappa * (k[:, :-1] - k[:, 1:])


@settings(max_examples=60, **SETTINGS)
@given(histc2d_cases())
def test_histc2d_gradients_match_dense_reference(case):
    x, y, bins, lo, hi, kappa, kernel, weight = case
    keep = torch.isfinite(x) & torch.isfinite(y)
    x, y = x[keep].clone().requires_grad_(True), y[keep].clone().requires_grad_(True)
    w = None if weight is None else weight[keep].clone().requires_grad_(True)
    out = softhist_ext.histc2d(x, y, bins, lo, hi, kappa, kernel, w)
    g = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)
    (out * g).sum().backward()
    mx, sx = dense_masses_and_slopes(x.detach(), bins[0], lo[0], hi[0], kappa[0], kernel)
    my, sy = dense_masses_and_slopes(y.detach(), bins[1], lo[1], hi[1], kappa[1], kernel)
    wd = torch.ones_like(x) if w is None else w.detach()
    scale = max(kappa) * (1 + float(wd.abs().max()) if wd.numel() else 1)
    grad_x = wd * torch.einsum("ab,na,nb->n", g, sx, my)
    grad_y = wd * torch.einsum("ab,na,nb->n", g, mx, sy)
    if x.numel():
        torch.testing.assert_close(x.grad, grad_x, rtol=1e-7, atol=1e-9 * scale)
        torch.testing.assert_close(y.grad, grad_y, rtol=1e-7, atol=1e-9 * scale)
    if w is not None and w.numel():
        torch.testing.assert_close(w.grad, torch.einsum("ab,na,nb->n", g, mx, my), rtol=1e-9, atol=1e-9)


@st.composite
def mi_cases(draw):
    batch, n = draw(st.integers(1, 3)), draw(st.integers(2, 60))
    bins = (draw(st.integers(2, 16)), draw(st.integers(2, 16)))
    kernel = draw(st.sampled_from(KERNELS))
    kw = draw(st.floats(0.5, 20))
    kappa = (kw * bins[0], kw * bins[1])  # over the default range [0, 1]
    u = st.floats(0, 1)
    x = torch.tensor(draw(st.lists(u, min_size=batch * n, max_size=batch * n)), dtype=torch.float64)
    y = torch.tensor(draw(st.lists(u, min_size=batch * n, max_size=batch * n)), dtype=torch.float64)
    weighted = draw(st.booleans())
    w = torch.tensor(draw(st.lists(st.floats(0.1, 2), min_size=batch * n, max_size=batch * n)),
                     dtype=torch.float64).reshape(batch, n) if weighted else None
    return x.reshape(batch, n), y.reshape(batch, n), bins, kappa, kernel, w, draw(st.booleans()), draw(st.booleans())


# Wide kernels without open ends lose much of the mass beyond [0, 1], which
# mutual_information warns about.
@pytest.mark.filterwarnings("ignore:softhist. mutual_information. .* falls outside")
@settings(max_examples=60, **SETTINGS)
@given(mi_cases())
def test_mutual_information_matches_dense_computation(case):
    x, y, bins, kappa, kernel, w, normalized, conserve_mass = case
    mi = softhist_ext.mutual_information(x, y, bins, 0.0, 1.0, kappa, kernel, normalized, w, [1],
                                         conserve_mass)
    expected = []
    for item in range(x.shape[0]):
        joint = reference.histc2d(x[item], y[item], bins, (0.0, 0.0), (1.0, 1.0), kappa, kernel,
                                  None if w is None else w[item], conserve_mass)
        p = joint / joint.sum()
        px, py = p.sum(1, keepdim=True), p.sum(0, keepdim=True)
        nz = p > 0
        value = (p[nz] * (p[nz] / (px * py)[nz]).log()).sum()
        if normalized:
            h = -(px[px > 0] * px[px > 0].log()).sum() - (py[py > 0] * py[py > 0].log()).sum()
            value = 2 * value / h
        expected.append(value)
    torch.testing.assert_close(mi, torch.stack(expected), rtol=1e-9, atol=1e-10)
