"""16-bit input where float16's range (65504) or bfloat16's 8 bits run out:
sums over many samples (the edge sums behind the range's, kappa's and the
edges' gradients, density's total, a joint bin of MI, pair counts) are not
taken in the input's dtype. Each against float64 formulas on the same values."""

import numpy as np
import pytest
import torch

import softhist_ext
from softhist_ext import losses, reference

HALF = [torch.float16, torch.bfloat16]


def _samples(n, dtype, seed=0):
    # Peaked (std 0.5): 100k samples put about 80k per unit of x at the
    # centre, past 65504, while no bin of 1/8 holds more than about 10k.
    return (torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 0.5).to(dtype)


def _leaves(*values):
    return [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("kernel", ["logistic", "bspline"])
def test_range_and_kappa_gradients_of_many_16bit_samples(dtype, kernel):
    x = _samples(100_000, dtype)
    g = torch.linspace(-1, 1, 32).to(dtype).double()  # (the upstream gradient as x's dtype has it)
    lo, hi, kappa = _leaves(-2.0, 2.0, 16.0)
    out = softhist_ext.histc(x, 32, lo, hi, kappa, kernel=kernel)
    assert out.dtype == dtype
    ours = torch.autograd.grad((out.double() * g).sum(), [lo, hi, kappa])
    lo_r, hi_r, kappa_r = _leaves(-2.0, 2.0, 16.0)
    edges = lo_r + (hi_r - lo_r) * torch.linspace(0, 1, 33, dtype=torch.float64)
    dense = reference.histogram_edges(x.double(), edges, kappa_r, kernel)
    expected = torch.autograd.grad((dense * g).sum(), [lo_r, hi_r, kappa_r])
    for a, b, rtol in zip(ours, expected, [1e-4, 1e-4, 2e-2]):
        assert abs(float(b)) > 0.01  # the test can fail
        torch.testing.assert_close(a, b, rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", HALF)
def test_learned_edges_gradient_of_many_16bit_samples(dtype):
    x = _samples(100_000, dtype, seed=1)
    edges = torch.linspace(-2, 2, 33).to(dtype).requires_grad_()
    g = torch.linspace(-1, 1, 32).to(dtype).double()
    (ours,) = torch.autograd.grad((softhist_ext.histogram(x, edges).hist.double() * g).sum(), edges)
    e = edges.detach().double().requires_grad_()
    kappa = reference.default_kappa_width("logistic") * 32 / (e[-1] - e[0])  # (histogram's default)
    (expected,) = torch.autograd.grad((reference.histogram_edges(x.double(), e, kappa) * g).sum(), e)
    assert ours.dtype == dtype and bool(torch.isfinite(ours).all())
    torch.testing.assert_close(ours.double(), expected, rtol=1e-2, atol=1e-2 * expected.abs().max())


@pytest.mark.parametrize("dtype", HALF)
def test_density_of_more_samples_than_float16_holds(dtype):
    x = torch.rand(70_000, generator=torch.Generator().manual_seed(2)).to(dtype)
    expected = reference.histc(x.double(), 16, 0.0, 1.0, density=True)
    hard = torch.histc(x.double(), 16, 0.0, 1.0)
    hard = hard / (hard.sum() / 16)
    results = {
        "histc": (softhist_ext.histc(x, 16, 0.0, 1.0, density=True), expected),
        "histc hard": (softhist_ext.histc(x, 16, 0.0, 1.0, kernel="hard", density=True), hard),
        "histogram": (softhist_ext.histogram(x, 16, range=(0.0, 1.0), density=True).hist, expected),
        "histogramdd": (softhist_ext.histogramdd(x[:, None], 16, [0.0, 1.0], density=True).hist,
                        expected),
        "tensor range": (softhist_ext.histogramdd(
            x[:, None], 16, [torch.tensor(0.0, requires_grad=True), 1.0], density=True).hist,
            expected),
    }
    for name, (ours, theirs) in results.items():
        assert ours.dtype == dtype, name
        torch.testing.assert_close(ours.double(), theirs, rtol=1e-2, atol=0, msg=name)


def test_density_with_a_bin_past_float16s_range(device):
    # A 512 x 512 float16 image with a background of zeros: that bin's count
    # passes 65504, its density (about 4) does not. The histogram had been
    # rounded to float16 first: inf / inf, a NaN density.
    cpu = torch.zeros(512 * 512, dtype=torch.float16)
    cpu[:1000] = torch.linspace(0.3, 1.0, 1000)
    wide = cpu.double()
    hard = torch.histogram(wide, 4, range=(0.0, 1.0), density=True).hist
    x = cpu.to(device)
    edges = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float16, device=device)
    results = {
        "histc hard": (softhist_ext.histc(x, 4, 0.0, 1.0, kernel="hard", density=True), hard),
        "straight_through": (softhist_ext.histc(x, 4, 0.0, 1.0, straight_through=True, density=True), hard),
        "histogram hard": (softhist_ext.histogram(x, 4, (0.0, 1.0), kernel="hard", density=True).hist, hard),
        "histogram edges hard": (softhist_ext.histogram(x, edges, kernel="hard", density=True).hist, hard),
        "histogramdd hard": (softhist_ext.histogramdd(x[:, None], 4, [0.0, 1.0], kernel="hard",
                                                      density=True).hist, hard),
    }
    for kernel in ("box", "logistic"):
        soft = reference.histc(wide, 4, 0.0, 1.0, kernel=kernel, density=True)
        results[f"histc {kernel}"] = (softhist_ext.histc(x, 4, 0.0, 1.0, kernel=kernel, density=True), soft)
        results[f"histogram edges {kernel}"] = (
            softhist_ext.histogram(x, edges, kernel=kernel, density=True).hist, soft)
        results[f"histogramdd {kernel}"] = (
            softhist_ext.histogramdd(x[:, None], 4, [0.0, 1.0], kernel=kernel, density=True).hist, soft)
    for name, (ours, theirs) in results.items():
        assert ours.dtype == torch.float16, name
        torch.testing.assert_close(ours.cpu().double(), theirs, rtol=2e-3, atol=1e-5, msg=name)
    # Counts past 65504 are float16's inf, also straight through (not inf - inf).
    counts = softhist_ext.histc(x, 4, 0.0, 1.0, straight_through=True)
    assert counts[0] == float("inf") and not bool(counts.isnan().any())


def test_even_edges_of_a_float16_range_wider_than_65504():
    # Both ends within float16, their difference not: torch.linspace in
    # float16 had made the edges NaN and inf, and the hard kernel counted nothing.
    x = torch.tensor([-40000.0, -10000.0, 0.0, 10000.0, 40000.0], dtype=torch.float16)
    expected = torch.histogram(x.float(), 4)
    for result in (softhist_ext.histogram(x, 4, kernel="hard"),
                   softhist_ext.histogramdd(x[:, None], 4, kernel="hard")):
        hist, edges = result
        edges = edges if isinstance(edges, torch.Tensor) else edges[0]
        assert torch.equal(edges.float(), expected.bin_edges)
        assert torch.equal(hist.float(), expected.hist)


def test_density_over_a_tensor_range_takes_the_nominal_widths():
    # float16 can't hold edges 1/4 apart at 1000: the widths are the
    # nominal range's, as with numbers.
    x = torch.tensor([[1000.0], [1000.5], [1001.0], [1000.5]], dtype=torch.float16)
    lo = torch.tensor(1000.0, dtype=torch.float64, requires_grad=True)
    ours = softhist_ext.histogramdd(x, 4, [lo, 1001.0], density=True).hist
    expected = reference.histc(x.double().flatten(), 4, 1000.0, 1001.0, density=True)
    torch.testing.assert_close(ours.double(), expected, rtol=2e-3, atol=0)


def _ct_like(shape, seed):
    # A 16-bit CT slice: 70% air at exactly -1000 HU (a joint bin past
    # 65504 pairs), the rest integer HU in [-999, 999].
    gen = torch.Generator().manual_seed(seed)
    v = torch.randint(-999, 1000, shape, generator=gen).float()
    air = torch.rand(shape, generator=gen) < 0.7
    return torch.where(air, torch.full_like(v, -1000.0), v)


def _mi(joint):
    p = joint / joint.sum()
    outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / outer[nz])).sum())


@pytest.mark.parametrize("dtype", HALF)
def test_mutual_information_of_a_16bit_ct_slice(dtype):
    x = _ct_like((1, 1, 320, 320), 3).to(dtype)
    y = torch.where(torch.rand(x.shape, generator=torch.Generator().manual_seed(4)) < 0.9,
                    x, torch.zeros_like(x))
    xs, ys = x.double().flatten(), y.double().flatten()
    counts, _, _ = np.histogram2d(xs.numpy(), ys.numpy(), 16, [[-1000, 1000], [-1000, 1000]])
    hard = softhist_ext.mutual_information(x, y, 16, -1000.0, 1000.0, kernel="hard")
    assert hard.dtype == torch.float32
    assert abs(float(hard) - _mi(counts)) < 1e-5
    kw = reference.default_kappa_width("bspline")
    for args, (los, his) in [((16, -1000.0, 1000.0), ([-1000.0] * 2, [1000.0] * 2)),
                             ((16,), ([float(xs.min()), float(ys.min())],
                                      [float(xs.max()), float(ys.max())]))]:
        kappa = [kw * 16 / (h - l) for l, h in zip(los, his)]
        joint = reference.histc2d(xs, ys, [16, 16], los, his, kappa, "bspline", conserve_mass=True)
        soft = softhist_ext.mutual_information(x, y, *args)  # fixed range; the item's own
        assert abs(float(soft) - _mi(joint.numpy())) < 1e-4 * _mi(joint.numpy())
    assert bool(torch.isfinite(losses.MutualInformationLoss(16)(x, y)))


@pytest.mark.parametrize("dtype", HALF)
def test_embedding_loss_with_more_pairs_than_float16_holds(dtype):
    # 512 embeddings: 130,816 pairs.
    gen = torch.Generator().manual_seed(5)
    emb = torch.randn(512, 16, generator=gen).to(dtype)
    labels = torch.arange(512) % 8
    e = emb.clone().requires_grad_()
    ours = losses.embedding_histogram_loss(e, labels)
    (grad,) = torch.autograd.grad(ours, e)
    assert ours.dtype == dtype
    from test_histogram_losses import paper_histogram_loss

    e64 = emb.double().requires_grad_()
    expected = paper_histogram_loss(e64, labels, 101)
    (expected_grad,) = torch.autograd.grad(expected, e64)
    assert 0.3 < float(expected.detach()) < 0.7
    assert abs(float(ours.detach()) - float(expected.detach())) < 0.01
    # (the pairs' gradients, summed in the matmul's backward, would underflow float16)
    scale = float(expected_grad.abs().max())
    assert float((grad.double() - expected_grad).abs().max()) < 5e-3 * scale


@pytest.mark.parametrize("kernel", ["logistic", "hard"])
def test_density_of_no_rows(kernel):
    # An empty batch: float32's empty result, in float16.
    x = torch.zeros(0, 5, dtype=torch.float16)
    assert softhist_ext.histc(x, 8, 0.0, 1.0, kernel=kernel, dim=-1, density=True).shape == (0, 8)
    joint = softhist_ext.histogramdd(x[..., None].expand(0, 5, 2), 4, [0.0, 1.0] * 2, kernel=kernel,
                                     dim=1, density=True).hist
    assert joint.shape == (0, 4, 4) and joint.dtype == torch.float16


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("edges", [False, True])  # (explicit edges: the forward keeps the places)
def test_weighted_sample_gradient_where_the_unweighted_one_passes_float16s_range(dtype, edges):
    # Small weights times a gather past 65504: the product fits, as float32's.
    g = torch.tensor([30000.0, -30000.0] * 4)
    bins = torch.linspace(0.0, 1.0, 9) if edges else 8
    found = []
    for t in (dtype, torch.float32):
        x = torch.tensor([21 / 64, 45 / 64], dtype=t, requires_grad=True)  # (exact in bfloat16)
        b = bins.to(t) if edges else bins
        hist = softhist_ext.histogram(x, b, range=None if edges else (0.0, 1.0), kernel="triangular",
                                      weight=torch.full_like(x, 0.01), kappa=10.0).hist
        found.append(torch.autograd.grad((hist * g.to(t)).sum(), x)[0].float())
    assert found[0].isfinite().all() and (found[1].abs() > 1000).all()
    torch.testing.assert_close(found[0], found[1], rtol=1e-2, atol=0)
