"""Distances between soft histograms (histogram_distance, HistogramLoss) and
the embedding Histogram loss: against dense references and textbook formulas
(scipy where it has one), and the distances' own properties."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, wasserstein_distance

import softhist_ext
from softhist_ext import losses, reference

DISTANCES = list(losses.DISTANCES)
METRICS = ["l1", "l2", "emd", "hellinger", "intersection"]
SYMMETRIC = [d for d in DISTANCES if d != "kl"]
EPS = 1e-10


def textbook(p, q, distance, width):
    """The distance of two probability vectors (numpy float64), written out."""
    if distance == "l1":
        return np.abs(p - q).sum()
    if distance == "l2":
        return np.sqrt(((p - q) ** 2).sum())
    if distance == "emd":  # W1 between masses at the bin centres
        centres = np.arange(len(p)) * width
        return wasserstein_distance(centres, centres, p, q)
    if distance == "hellinger":
        return np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum())
    if distance == "chi2":
        s = p + q
        return 0.5 * (((p - q) ** 2)[s > 0] / s[s > 0]).sum()
    if distance == "kl":  # KL(target || input) of the documented smoothing
        n = len(p)
        return entropy((q + EPS) / (1 + n * EPS), (p + EPS) / (1 + n * EPS))
    if distance == "js":
        return jensenshannon(p, q) ** 2
    if distance == "bhattacharyya":
        return math.log1p(EPS) - math.log(np.sqrt(p * q).sum() + EPS)
    if distance == "intersection":
        return 1 - np.minimum(p, q).sum()
    raise ValueError(distance)


def dense_distances(x, y, distance, bins, lo=None, hi=None, kernel="bspline", hard=False):
    """Per (b, c): histograms by reference.histc (or torch.histc for hard),
    each row's own joint range when lo is None, then textbook()."""
    B, C = x.shape[:2]
    xs, ys = x.reshape(B, C, -1), y.reshape(B, C, -1)
    out = np.zeros((B, C))
    for b in range(B):
        for c in range(C):
            a, t = xs[b, c], ys[b, c]
            l, h = (lo, hi) if lo is not None else (
                float(min(a.min(), t.min())), float(max(a.max(), t.max())))
            if hard:
                ha, ht = torch.histc(a, bins, l, h), torch.histc(t, bins, l, h)
            else:
                ha = reference.histc(a, bins, l, h, None, kernel, conserve_mass=True)
                ht = reference.histc(t, bins, l, h, None, kernel, conserve_mass=True)
            p, q = ha.double().numpy(), ht.double().numpy()
            out[b, c] = textbook(p / p.sum(), q / q.sum(), distance, (h - l) / bins)
    return torch.from_numpy(out)


def pair(seed=0, shape=(2, 3, 6, 7), other=(2, 3, 5, 4), dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen, dtype=dtype)
    y = torch.rand(other, generator=gen, dtype=dtype) ** 2
    return x, y


# ---------------------------------------------------------------------------
# histogram_distance: values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("kernel", ["bspline", "logistic", "box"])
def test_distance_matches_dense_reference_fixed_range(distance, kernel):
    # Input and target with different spatial sizes; a range wider than the
    # data (empty bins at the ends, tiny logistic tails there).
    x, y = pair(1)
    ours = losses.histogram_distance(x, y, distance, 12, -0.2, 1.1, kernel=kernel)
    assert ours.shape == (2, 3) and ours.dtype == torch.float64
    expected = dense_distances(x, y, distance, 12, -0.2, 1.1, kernel)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("distance", DISTANCES)
def test_distance_matches_dense_reference_own_joint_range(distance):
    x, y = pair(2)
    y = y * 1.5 - 0.2  # the joint range is wider than input's
    ours = losses.histogram_distance(x, y, distance, 10, kernel="logistic")
    expected = dense_distances(x, y, distance, 10, None, None, "logistic")
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("distance", DISTANCES)
def test_hard_kernel_equals_torch_histc_computation(distance):
    x, y = pair(3, (2, 2, 40), (2, 2, 30))
    for lo, hi in ((0.0, 1.0), (None, None)):
        ours = losses.histogram_distance(x, y, distance, 8, lo, hi, kernel="hard")
        expected = dense_distances(x, y, distance, 8, lo, hi, hard=True)
        torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)


def test_kl_smoothing_is_within_its_stated_bias_of_textbook_kl():
    # All bins positive (logistic kernel, data filling the range): the
    # smoothing changes KL by about bins * eps * max(q / p) relative.
    x, y = pair(4)
    ours = losses.histogram_distance(x, y, "kl", 8, 0.0, 1.0, kernel="logistic")
    for b in range(2):
        for c in range(3):
            p = reference.histc(x[b, c].flatten(), 8, 0.0, 1.0, None, "logistic", conserve_mass=True).numpy()
            q = reference.histc(y[b, c].flatten(), 8, 0.0, 1.0, None, "logistic", conserve_mass=True).numpy()
            p, q = p / p.sum(), q / q.sum()
            bound = 8 * EPS * (1 + (q / p).max()) * (1 + abs(np.log(q / p)).max())
            assert abs(ours[b, c].item() - entropy(q, p)) <= bound


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES)
def test_identity_symmetry_and_ranges(distance):
    x, y = pair(5)
    d_xx = losses.histogram_distance(x, x, distance, 16, 0.0, 1.0)
    assert (d_xx.abs() <= 1e-12).all(), d_xx
    d_xy = losses.histogram_distance(x, y, distance, 16, 0.0, 1.0)
    d_yx = losses.histogram_distance(y, x, distance, 16, 0.0, 1.0)
    assert (d_xy > 1e-3).all()
    if distance in SYMMETRIC:
        torch.testing.assert_close(d_xy, d_yx, rtol=1e-12, atol=1e-14)
    else:
        assert (d_xy - d_yx).abs().max() > 1e-3
    upper = {"l1": 2.0, "l2": math.sqrt(2), "hellinger": 1.0, "chi2": 1.0, "js": math.log(2),
             "intersection": 1.0, "emd": 1.0, "bhattacharyya": math.log(1 / EPS), "kl": math.inf}
    assert (d_xy >= 0).all() and (d_xy <= upper[distance]).all()


def test_every_distance_of_equal_histograms_is_zero_in_float32():
    # log1p(eps) - log(bc + eps) had given eps = 1e-10 at bc = 1, where
    # 1 + eps rounds to 1, and bc had been 1 only to rounding.
    x = torch.full((1, 2, 50), 0.53125)  # every sample in one of 16 bins: bc = 1 exactly
    # and samples whose normalised histogram's square roots round (sum p != 1)
    spread = torch.rand(200, 3, 1000, generator=torch.Generator().manual_seed(3))
    for kernel in ["hard", "box"]:
        for distance in DISTANCES:
            for v in (x, spread):
                d = losses.histogram_distance(v, v, distance, 16, 0.0, 1.0, kernel=kernel)
                assert d.dtype == torch.float32 and (d == 0).all(), (distance, d.abs().max())


def test_intersection_is_half_l1_and_extremes_are_reached():
    x, y = pair(6)
    torch.testing.assert_close(losses.histogram_distance(x, y, "intersection", 16, 0.0, 1.0),
                               losses.histogram_distance(x, y, "l1", 16, 0.0, 1.0) / 2,
                               rtol=1e-12, atol=1e-14)
    # Disjoint supports (box kernel: no mass beyond half a bin): the bounded
    # distances take their maxima, and none is inf or NaN.
    a = torch.rand(1, 1, 50, dtype=torch.float64) * 0.3
    b = 0.6 + torch.rand(1, 1, 50, dtype=torch.float64) * 0.3
    top = {"l1": 2.0, "hellinger": 1.0, "chi2": 1.0, "js": math.log(2), "intersection": 1.0,
           "bhattacharyya": math.log1p(EPS) - math.log(EPS)}
    for distance, value in top.items():
        d = losses.histogram_distance(a, b, distance, 20, 0.0, 1.0, kernel="box")
        torch.testing.assert_close(d, torch.full_like(d, value), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("distance", METRICS)
def test_triangle_inequality_of_the_metrics(distance):
    gen = torch.Generator().manual_seed(7)
    # 40 random triples, as 40 channels: different shapes of distribution.
    a, b, c = (torch.rand(1, 40, 30, generator=gen, dtype=torch.float64)
               ** (0.3 + 3 * torch.rand(1, 40, 1, generator=gen, dtype=torch.float64))
               for _ in range(3))
    d = lambda u, v: losses.histogram_distance(u, v, distance, 10, 0.0, 1.0, kernel="logistic")  # noqa: E731
    assert (d(a, c) <= d(a, b) + d(b, c) + 1e-12).all()
    assert (d(a, b) <= d(a, c) + d(c, b) + 1e-12).all()
    # sqrt(js) is a metric too, js itself not in general.
    js = lambda u, v: losses.histogram_distance(u, v, "js", 10, 0.0, 1.0).sqrt()  # noqa: E731
    assert (js(a, c) <= js(a, b) + js(b, c) + 1e-12).all()


@pytest.mark.parametrize("kernel", ["box", "triangular", "bspline"])
def test_emd_of_a_shift_is_the_shift_exactly_for_box_based_kernels(kernel):
    # At their default kappa these kernels are a box one bin wide convolved
    # with something (box: itself; triangular: two boxes; bspline: four): by
    # Poisson summation, sum_b CDF(e_b) * width is then exactly affine in each
    # sample's position, so the EMD of any samples and the same samples
    # shifted by s (inside the range) is s, up to rounding: random samples
    # and a shift that is no multiple of the bin width (0.37 bins).
    x = torch.randn(1, 1, 500, dtype=torch.float64)
    width = 8.0 / 32
    for s in (0.37 * width, 2.61 * width):
        d = losses.histogram_distance(x, x + s, "emd", 32, -4.0, 4.0 + 3 * width, kernel=kernel)
        assert abs(d.item() - s) < 1e-12, (d.item(), s)


@pytest.mark.parametrize("kernel", ["logistic", "gaussian"])
def test_emd_of_a_shift_for_kernels_with_tails(kernel):
    # The logistic and gaussian kernels' characteristic functions phi do not
    # vanish at the bin frequencies 2 pi m / width. By Poisson summation the
    # edge sum of the two CDFs' difference is then s plus, per harmonic m,
    # phi_m * width / (pi m) times the samples' mean phase c_m = mean_i
    # exp(2 pi i m (x_i - min) / width), for the samples and their shift
    # (the same |c_m|): |EMD - s| <= sum_m 2 |phi_m| width |c_m| / (pi m).
    # Logistic at kappa * width = 4: phi_m = (pi^2 m / 2) / sinh(pi^2 m / 2)
    # (0.071 at m = 1); gaussian at 2: exp(-pi^2 m^2 / 2) (0.0072). The bound
    # is computed from the samples: the quantiles of a normal distribution
    # (c_1 small: they fill most bins densely) and random normal samples.
    n, width, lo = 2000, 0.25, -6.0
    quantiles = torch.special.ndtri((torch.arange(n, dtype=torch.float64) + 0.5) / n)
    for x in (quantiles, torch.randn(n, dtype=torch.float64)):
        bound = 1e-13
        for m in range(1, 6):
            a = math.pi**2 * m / 2
            phi = a / math.sinh(a) if kernel == "logistic" else math.exp(-math.pi**2 * m**2 / 2)
            c = torch.exp(2j * math.pi * m * (x - lo) / width).mean().abs().item()
            bound += 2 * phi * width * c / (math.pi * m)
        for s in (0.37 * width, 1.61 * width):
            d = losses.histogram_distance(x, x + s, "emd", 48, lo, 6.0, kernel=kernel).item()
            assert abs(d - s) <= bound, (d, s, bound)
            assert bound < 0.02 * s  # the bound says something


def test_emd_of_a_shift_with_hard_counts_is_within_a_bin():
    x = torch.randn(1, 1, 5000, dtype=torch.float64)
    width = 0.25
    for s in (0.1, 0.37, 0.8):
        d = losses.histogram_distance(x, x + s, "emd", 48, -6.0, 6.0, kernel="hard")
        assert abs(d.item() - s) <= width


def test_emd_is_in_the_input_units():
    # 0..255 intensities with each item's own range: EMD scales with them,
    # the other distances do not change.
    x, y = pair(8, (2, 2, 9, 9), (2, 2, 7, 7))
    for distance in DISTANCES:
        unit = losses.histogram_distance(x, y, distance, 16)
        scaled = losses.histogram_distance(x * 255, y * 255, distance, 16)
        factor = 255.0 if distance == "emd" else 1.0
        torch.testing.assert_close(scaled, unit * factor, rtol=1e-9, atol=1e-11)
        fixed = losses.histogram_distance(x * 255, y * 255, distance, 16, 0.0, 255.0)
        torch.testing.assert_close(fixed, losses.histogram_distance(x, y, distance, 16, 0.0, 1.0) * factor,
                                   rtol=1e-9, atol=1e-11)


# ---------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES)
def test_gradcheck(distance):
    gen = torch.Generator().manual_seed(9)
    x = torch.rand(1, 2, 6, generator=gen, dtype=torch.float64).requires_grad_()
    y = torch.rand(1, 2, 5, generator=gen, dtype=torch.float64).requires_grad_()
    # Full Jacobians with the compact B-spline (bins exactly empty too); a
    # random projection (fast_mode) with the gaussian's tails.
    for kernel, fast in (("bspline", False), ("gaussian", True)):
        assert torch.autograd.gradcheck(
            lambda a, b: losses.histogram_distance(a, b, distance, 6, -0.1, 1.1, kernel=kernel),
            (x, y), fast_mode=fast)


@pytest.mark.parametrize("distance", DISTANCES)
def test_gradients_are_finite_at_empty_bins_and_at_zero_distance(distance):
    # Box kernel: bins exactly empty in one histogram and not the other, and
    # disjoint histograms; and input equal to target.
    a = (torch.rand(1, 2, 20, dtype=torch.float64) * 0.4).requires_grad_()
    b = 0.3 + torch.rand(1, 2, 20, dtype=torch.float64) * 0.4
    far = 0.8 + torch.rand(1, 2, 20, dtype=torch.float64) * 0.15
    for target in (b, far, a.detach().clone()):
        (g,) = torch.autograd.grad(losses.histogram_distance(a, target, distance, 20, 0.0, 1.0,
                                                             kernel="box").sum(), a)
        assert torch.isfinite(g).all()
    # Equal histograms: the distance is at its minimum, its gradient 0.
    torch.testing.assert_close(g, torch.zeros_like(g), rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------
# shapes, reductions, dtypes
# ---------------------------------------------------------------------------


def test_batched_equals_a_loop_over_items_and_channels():
    x, y = pair(10, (3, 2, 8, 8), (3, 2, 6, 5))
    for lo, hi in ((0.0, 1.0), (None, None)):
        batched = losses.histogram_distance(x, y, "hellinger", 16, lo, hi)
        for b in range(3):
            for c in range(2):
                one = losses.histogram_distance(x[b, c].flatten(), y[b, c].flatten(), "hellinger", 16, lo, hi)
                assert one.shape == ()
                torch.testing.assert_close(batched[b, c], one, rtol=1e-12, atol=1e-14)
                torch.testing.assert_close(
                    losses.histogram_distance(x[b, c][None, None], y[b, c][None, None], "hellinger", 16,
                                              lo, hi), one.reshape(1, 1), rtol=1e-12, atol=1e-14)


def test_distances_do_not_depend_on_thread_count_past_32768_bins():
    # One histogram's sums over more than 32768 bins (its mass, each
    # distance's sum, the normalisation's gradient) had followed torch's
    # per-thread parts.
    gen = torch.Generator().manual_seed(3)
    x, y = torch.rand(100_000, generator=gen), torch.rand(100_000, generator=gen)
    threads = torch.get_num_threads()
    try:
        for distance in losses.DISTANCES:
            results = []
            for n in (1, 2, 3):
                torch.set_num_threads(n)
                xi = x.clone().requires_grad_()
                value = losses.histogram_distance(xi, y, distance, 40_000, 0.0, 1.0, kernel="box")
                results.append((value, *torch.autograd.grad(value, xi)))
            for r in results[1:]:
                assert torch.equal(r[0], results[0][0]) and torch.equal(r[1], results[0][1]), distance
    finally:
        torch.set_num_threads(threads)


def test_reductions_and_dtypes():
    x, y = pair(11, dtype=torch.float32)
    d = losses.histogram_distance(x, y, "js", 16, 0.0, 1.0)
    assert d.dtype == torch.float32 and d.shape == (2, 3)
    for reduction, expected in (("mean", d.mean()), ("sum", d.sum()), ("none", d)):
        torch.testing.assert_close(losses.HistogramLoss("js", 16, 0.0, 1.0, reduction=reduction)(x, y), expected)
    torch.testing.assert_close(d.double(), losses.histogram_distance(x.double(), y.double(), "js", 16, 0.0, 1.0),
                               rtol=1e-4, atol=1e-6)
    assert losses.histogram_distance(x.double(), y, "js", 16).dtype == torch.float64
    assert losses.HistogramLoss("l1", reduction="none")(x[0, 0].flatten(), y[0, 0].flatten()).shape == ()


def test_errors():
    x, y = pair(12)
    with pytest.raises(ValueError, match=r'unknown distance "cosine".*"l1".*"emd".*"intersection"'):
        losses.histogram_distance(x, y, "cosine")
    with pytest.raises(ValueError, match="unknown distance"):
        losses.HistogramLoss("L1")
    with pytest.raises(ValueError, match="reduction must be"):
        losses.HistogramLoss(reduction="max")
    for kwargs, words in ((dict(bins=0), "bins must be >= 1"), (dict(min=1.0, max=0.0), "min must be below max"),
                          (dict(min=0.0), "min and max together"), (dict(kernel="cosine"), "kernel must be one of")):
        with pytest.raises(ValueError, match="HistogramLoss.*" + words):  # when built, not at its first call
            losses.HistogramLoss(**kwargs)
    with pytest.raises(ValueError, match=r"same batch and channel sizes.*\[2, 3\] and \[2, 2\]"):
        losses.histogram_distance(x, y[:, :2])
    with pytest.raises(ValueError, match=r"x\[None, None\]|input\[None, None\]"):
        losses.histogram_distance(x[0, 0], y[0, 0])
    with pytest.raises(ValueError, match="two 1-d tensors"):
        losses.histogram_distance(x[0, 0, 0], y)
    with pytest.raises(ValueError, match="min and max together"):
        losses.histogram_distance(x, y, min=0.0)
    with pytest.raises(ValueError, match="min < max"):
        losses.histogram_distance(x, y, min=1.0, max=1.0)
    with pytest.raises(ValueError, match="pass min and max too"):
        losses.histogram_distance(x, y, kappa=10.0)
    with pytest.raises(ValueError, match="floating-point"):
        losses.histogram_distance((x * 255).to(torch.uint8), y)
    with pytest.raises(TypeError, match="histogram_distance's bins must be an int"):
        losses.histogram_distance(x, y, bins=3.5)
    bad = x.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="input's histogram of batch item 1, channel 2 has no mass"):
        losses.histogram_distance(bad, y)
    with pytest.raises(ValueError, match="target's histogram of batch item 0, channel 1 has no mass: no finite sample inside"):
        shifted = y.clone()
        shifted[0, 1] += 5
        losses.histogram_distance(x, shifted, "l1", 8, 0.0, 1.0)
    with pytest.raises(Exception, match="has no mass"):
        torch.jit.script(losses.HistogramLoss("l1", 8))(bad, y)


def test_torchscript_and_compile():
    x, y = pair(13)
    x.requires_grad_()
    for distance in DISTANCES:
        for lo, hi in ((0.0, 1.0), (None, None)):
            eager = losses.HistogramLoss(distance, 8, lo, hi, reduction="none")
            scripted = torch.jit.script(eager)
            torch.testing.assert_close(scripted(x, y), eager(x, y), rtol=1e-14, atol=0)
    loss = losses.HistogramLoss("emd", 8, 0.0, 1.0)
    compiled = torch.compile(loss, fullgraph=True)
    value = compiled(x, y)
    (g,) = torch.autograd.grad(value, x)
    (g_eager,) = torch.autograd.grad(loss(x, y), x)
    torch.testing.assert_close(value, loss(x, y))
    torch.testing.assert_close(g, g_eager)


# ---------------------------------------------------------------------------
# the embedding Histogram loss
# ---------------------------------------------------------------------------


def paper_histogram_loss(emb, labels, R):
    """Ustinova & Lempitsky's eqs. 1-4 written out densely: delta_{i,j,r}
    linear interpolation weights of each pair's similarity on the nodes t_r."""
    e = emb / emb.norm(dim=1, keepdim=True)
    n = e.shape[0]
    delta = 2.0 / (R - 1)
    t = -1 + delta * torch.arange(R, dtype=emb.dtype)
    i, j = torch.triu_indices(n, n, 1)
    s = (e[i] * e[j]).sum(1)
    d = s[:, None] - t[None, :]  # pairs x R
    w = torch.where((d >= -delta) & (d <= 0), (s[:, None] - (t - delta)) / delta,
                    torch.where((d > 0) & (d <= delta), ((t + delta) - s[:, None]) / delta,
                                torch.zeros_like(d)))
    same = labels[i] == labels[j]
    h_pos = w[same].sum(0) / same.sum()
    h_neg = w[~same].sum(0) / (~same).sum()
    return (h_neg * torch.cumsum(h_pos, 0)).sum()


@pytest.mark.parametrize("R", [2, 11, 101])
def test_embedding_loss_matches_the_papers_formula(R):
    gen = torch.Generator().manual_seed(14)
    emb = torch.randn(40, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 5, (40,), generator=gen)
    ours = losses.embedding_histogram_loss(emb, labels, R)
    theirs = paper_histogram_loss(emb, labels, R)
    assert 0 < theirs.item() < 1
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    g_ours, g_theirs = (torch.autograd.grad(v, emb)[0] for v in (ours, theirs))
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(losses.EmbeddingHistogramLoss(R)(emb, labels), ours)
    torch.testing.assert_close(torch.jit.script(losses.EmbeddingHistogramLoss(R))(emb, labels), ours)


def test_embedding_loss_compiles_once_for_every_batch_size():
    torch._dynamo.reset()
    compiled = torch.compile(losses.EmbeddingHistogramLoss(21), fullgraph=True, dynamic=True,
                             backend="aot_eager")
    gen = torch.Generator().manual_seed(15)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for n in (10, 13, 17):
            emb = torch.randn(n, 5, generator=gen, dtype=torch.float64, requires_grad=True)
            labels = torch.arange(n) % 3
            value = compiled(emb, labels)
            torch.testing.assert_close(value, paper_histogram_loss(emb, labels, 21))
            value.backward()


def test_embedding_loss_gradcheck_and_its_meaning():
    gen = torch.Generator().manual_seed(15)
    emb = torch.randn(8, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    assert torch.autograd.gradcheck(lambda e: losses.embedding_histogram_loss(e, labels, 9), (emb,))
    # Well separated classes: every positive pair scores above every negative
    # one, nodes apart, so the loss is 0; swapping the roles gives 1.
    centres = torch.eye(3, dtype=torch.float64)
    tight = centres[labels] + 0.01 * torch.randn(8, 3, generator=gen, dtype=torch.float64)
    assert losses.embedding_histogram_loss(tight, labels, 21).item() == 0.0
    assert losses.embedding_histogram_loss(tight, torch.tensor([0, 1, 0, 1, 0, 1, 2, 2]), 21).item() > 0.3


def test_embedding_loss_is_nan_for_nan_or_infinite_embeddings():
    # As torch's losses: such pairs had been left out of the histograms but
    # not of their counts, so a diverged batch read as a low loss (0 when all
    # were NaN).
    e, labels = torch.randn(16, 8, dtype=torch.float64), torch.arange(16) % 4
    assert 0 < losses.embedding_histogram_loss(e, labels) < 1
    for bad in [float("nan"), float("inf")]:
        broken = e.clone()
        broken[0, 0] = bad
        assert torch.isnan(losses.embedding_histogram_loss(broken, labels))
    assert torch.isnan(losses.embedding_histogram_loss(torch.full_like(e, float("nan")), labels))


def test_embedding_loss_errors():
    emb = torch.randn(4, 3)
    with pytest.raises(ValueError, match="needs a positive pair"):
        losses.embedding_histogram_loss(emb, torch.arange(4))
    with pytest.raises(ValueError, match="needs a negative pair"):
        losses.EmbeddingHistogramLoss()(emb, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must be \(N,\)"):
        losses.embedding_histogram_loss(emb, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"embeddings must be \(N, D\)"):
        losses.embedding_histogram_loss(emb[0], torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be integers"):
        losses.embedding_histogram_loss(emb, torch.zeros(4))
    with pytest.raises(ValueError, match="bins >= 2"):
        losses.EmbeddingHistogramLoss(1)
    with pytest.raises(Exception, match="needs a positive pair"):
        torch.jit.script(losses.EmbeddingHistogramLoss())(emb, torch.arange(4))


def test_compiled_distance_to_a_histogram_with_no_mass_is_finite():
    # Compiled code skips the eager error; float32's mass had been floored at
    # 1e-300, which rounds to 0: 0 / 0. The empty histogram's probabilities are 0.
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    f = torch.compile(lambda a, b: losses.histogram_distance(a, b, "l1", min=0.0, max=1.0),
                      backend="eager", fullgraph=True)
    value = f(x, torch.rand(2, 1, 8, 8) + 5)
    torch.testing.assert_close(value, torch.ones(2, 1))
    (grad,) = torch.autograd.grad(value.sum(), x)
    assert bool(grad.isfinite().all())


def test_distance_of_an_empty_batch_is_empty_and_no_samples_has_no_mass():
    assert losses.histogram_distance(torch.rand(0, 3, 8, 8), torch.rand(0, 3, 8, 8)).shape == (0, 3)
    with pytest.raises(ValueError, match="input's histogram of batch item 0, channel 0 has no mass"):
        losses.histogram_distance(torch.zeros(1, 1, 0), torch.rand(1, 1, 5))
