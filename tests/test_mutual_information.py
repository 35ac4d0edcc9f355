"""Joint histograms and mutual information: against the dense outer product,
closed-form properties of MI, and MONAI where the formulations coincide."""

import math

import pytest
import torch
from torch.library import opcheck

import softhist_ext
from softhist_ext import reference

KERNELS = ["logistic", "gaussian", "triangular", "bspline"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("weighted", [False, True])
def test_histc2d_matches_dense_outer_product(device, kernel, weighted):
    x = torch.randn(2, 400, dtype=torch.float64)
    y = 0.5 * x + torch.randn(2, 400, dtype=torch.float64) * 0.5
    w = torch.rand(2, 400, dtype=torch.float64) if weighted else None
    out = softhist_ext.histc2d(x.to(device), y.to(device), (9, 7), (-2.0, -1.5), (2.0, 1.5), (3.0, 4.0),
                               kernel, None if w is None else w.to(device), -1)
    assert out.shape == (2, 9, 7)
    expected = reference.histc2d(x, y, (9, 7), (-2.0, -1.5), (2.0, 1.5), (3.0, 4.0), kernel, w)
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-11, atol=1e-11)
    out32 = softhist_ext.histc2d(x.float().to(device), y.float().to(device), (9, 7), (-2.0, -1.5),
                                 (2.0, 1.5), (3.0, 4.0), kernel, None if w is None else w.float().to(device), -1)
    torch.testing.assert_close(out32.cpu().double(), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kernel", KERNELS)
def test_histc2d_gradients(device, kernel):
    x = (torch.randn(30, dtype=torch.float64, device=device)).requires_grad_()
    y = (torch.randn(30, dtype=torch.float64, device=device)).requires_grad_()
    w = torch.rand(30, dtype=torch.float64, device=device, requires_grad=True)

    def f(x, y, w):
        return softhist_ext.histc2d(x, y, (5, 4), -2.0, 2.0, 2.0, kernel, w)

    assert torch.autograd.gradcheck(f, (x, y, w))
    assert torch.autograd.gradgradcheck(f, (x, y, w))
    g = torch.randn(5, 4, dtype=torch.float64, device=device)
    ours = torch.autograd.grad(f(x, y, w), (x, y, w), g)
    dense = torch.autograd.grad(
        reference.histc2d(x, y, (5, 4), (-2.0, -2.0), (2.0, 2.0), (2.0, 2.0), kernel, w), (x, y, w), g)
    for a, b in zip(ours, dense):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_histc2d_marginals_are_histc(device):
    x = torch.randn(3000, dtype=torch.float64, device=device)
    y = torch.rand(3000, dtype=torch.float64, device=device)  # well inside y's range
    joint = softhist_ext.histc2d(x, y, (20, 8), (-3.0, -20.0), (3.0, 20.0), (None, 10.0))
    torch.testing.assert_close(joint.sum(-1), softhist_ext.histc(x, 20, -3.0, 3.0), rtol=1e-10, atol=1e-10)
    joint = softhist_ext.histc2d(y, x, (8, 20), (-20.0, -3.0), (20.0, 3.0), (10.0, None))
    torch.testing.assert_close(joint.sum(-2), softhist_ext.histc(x, 20, -3.0, 3.0), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel", KERNELS + ["hard"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_weight_of_a_pair_that_reaches_no_bin_adds_nothing(device, kernel, bad):
    # Either coordinate out of reach (far outside the range, or not finite)
    # drops the pair, whichever axis it is on.
    x = torch.tensor([0.1, 0.5, 50.0, math.nan, -0.3], dtype=torch.float64)
    y = torch.tensor([0.2, 80.0, -0.4, 0.3, math.inf], dtype=torch.float64)
    w = torch.tensor([2.0, bad, bad, bad, bad], dtype=torch.float64)
    for a, b in ((x, y), (y, x)):
        expected = softhist_ext.histc2d(a[:1], b[:1], (6, 5), -1.0, 1.0, None, kernel, w[:1])
        out = softhist_ext.histc2d(a.to(device), b.to(device), (6, 5), -1.0, 1.0, None, kernel,
                                   w.to(device))
        torch.testing.assert_close(out.cpu(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", ["triangular", "bspline"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_weight_of_a_pair_reaches_only_its_window(device, kernel, bad):
    # 40 y bins: the y windows are shorter than the rows the kernels add at once,
    # so bins just past a window are touched with zero mass and must stay exact.
    x = torch.tensor([0.05, 0.3, 0.9], dtype=torch.float64)
    y = torch.tensor([0.9, 0.05, 0.5], dtype=torch.float64)
    w = torch.tensor([1.0, bad, 2.0], dtype=torch.float64)
    bins, kappa = (8, 40), (8.0, 40.0)
    out = softhist_ext.histc2d(x.to(device), y.to(device), bins, 0.0, 1.0, kappa, kernel,
                               w.to(device)).cpu()
    mass = reference.histc2d(x[1:2], y[1:2], bins, (0.0, 0.0), (1.0, 1.0), kappa, kernel)
    rest = reference.histc2d(x[[0, 2]], y[[0, 2]], bins, (0.0, 0.0), (1.0, 1.0), kappa, kernel,
                             w[[0, 2]])
    reached = mass > 1e-12
    assert out[reached].isnan().all() if math.isnan(bad) else (out[reached] == bad).all()
    # Beyond the support and one bin of window margin the bins are exact.
    a, b = torch.meshgrid(torch.arange(8), torch.arange(40), indexing="ij")
    far = ((a - 2).abs() > 3) | ((b - 2).abs() > 3)
    torch.testing.assert_close(out[far], rest[far], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", ["triangular", "bspline"])
def test_nonfinite_gradient_outside_a_pair_window_is_not_read(device, kernel):
    # The backward reads the incoming gradient only inside each pair's window.
    x = torch.tensor([0.31, 0.62], dtype=torch.float64)
    y = torch.tensor([0.061, 0.113], dtype=torch.float64)  # off the edges, where D is smooth
    bins, kappa = (8, 40), (8.0, 40.0)
    g = torch.rand(8, 40, dtype=torch.float64)
    g[:, 12:] = math.nan
    xd, yd = (v.to(device, copy=True).requires_grad_() for v in (x, y))
    softhist_ext.histc2d(xd, yd, bins, 0.0, 1.0, kappa, kernel).backward(g.to(device))
    xr, yr = (v.detach().clone().requires_grad_() for v in (x, y))
    dense = reference.histc2d(xr, yr, bins, (0.0, 0.0), (1.0, 1.0), kappa, kernel)
    dense.backward(g.nan_to_num(0.0))
    torch.testing.assert_close(xd.grad.cpu(), xr.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(yd.grad.cpu(), yr.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel", ["logistic", "bspline", "hard"])
def test_opcheck_joint_ops(device, kernel):
    ops = torch.ops.softhist
    smooth = kernel != "hard"
    x = torch.randn(2, 30, dtype=torch.float64, device=device, requires_grad=smooth)
    y = torch.randn(2, 30, dtype=torch.float64, device=device, requires_grad=smooth)
    w = torch.rand(2, 30, dtype=torch.float64, device=device, requires_grad=True)
    px = ops.params(x.detach(), 6, -2.0, 2.0, 2.0, kernel)
    py = ops.params(y.detach(), 5, -2.0, 2.0, 2.5, kernel)
    h = torch.randn(2, 6, 5, dtype=torch.float64, device=device, requires_grad=True)
    for ox, oy in ([(0, 0), (1, 0), (0, 2)] if smooth else [(0, 0)]):
        opcheck(ops.scatter2d, (x, y, w, px, py, 6, 5, ox, oy, kernel))
        opcheck(ops.gather2d, (x, y, h, px, py, ox, oy, kernel))


def test_mi_of_independent_samples_is_about_zero(device):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, 1 << 18, generator=gen, dtype=torch.float64)
    y = torch.rand(1, 1 << 18, generator=gen, dtype=torch.float64)
    mi = softhist_ext.mutual_information(x.to(device), y.to(device), bins=16)
    # The plug-in estimate's bias is about (bins - 1)^2 / (2N) = 4e-4 nats.
    assert 0 <= mi.item() < 2e-3


def test_mi_of_an_image_with_itself_is_its_entropy(device):
    x = torch.rand(2, 64, 64, dtype=torch.float64, device=device)
    for b in range(2):
        p = torch.histc(x[b].cpu(), 32, 0.0, 1.0) / x[b].numel()
        entropy = -(p[p > 0] * p[p > 0].log()).sum()
        hard = softhist_ext.mutual_information(x[b : b + 1], x[b : b + 1], kernel="hard")
        torch.testing.assert_close(hard.cpu()[0], entropy, rtol=1e-12, atol=1e-12)
    # A soft kernel spreads each sample off the diagonal: MI(x, x) is then below
    # H(x), approaching it as the kernel sharpens.
    sharp = softhist_ext.mutual_information(x, x, kappa=32 * 5000.0)
    hard = softhist_ext.mutual_information(x, x, kernel="hard")
    torch.testing.assert_close(sharp, hard, rtol=5e-3, atol=0)
    assert (softhist_ext.mutual_information(x, x) < hard).all()
    norm = softhist_ext.mutual_information(x, x, kernel="hard", normalized=True)
    torch.testing.assert_close(norm, torch.ones_like(norm))


@pytest.mark.parametrize("kernel", ["logistic", "gaussian", "bspline", "hard"])
def test_mi_is_invariant_to_an_invertible_remap(device, kernel):
    x = torch.rand(2, 40, 40, dtype=torch.float64, device=device)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1 - 1e-9)
    mi = softhist_ext.mutual_information(x, y, kernel=kernel)
    # Reflection maps bins onto bins, and symmetric kernels onto themselves.
    torch.testing.assert_close(softhist_ext.mutual_information(x, 1 - y, kernel=kernel), mi,
                               rtol=1e-10, atol=1e-12)
    if kernel == "hard":
        # So does moving the top half of the bins below the bottom half.
        shuffled = torch.where(y < 0.5, y + 0.5, y - 0.5)
        torch.testing.assert_close(softhist_ext.mutual_information(x, shuffled, kernel=kernel), mi,
                                   rtol=1e-10, atol=1e-12)


def test_mi_is_per_batch_item_not_over_the_flattened_batch(device):
    x = torch.rand(3, 1, 20, 20, device=device)
    y = torch.rand(3, 1, 20, 20, device=device)
    y[1] = x[1]
    mi = softhist_ext.mutual_information(x, y)
    assert mi.shape == (3,)
    for b in range(3):
        torch.testing.assert_close(mi[b], softhist_ext.mutual_information(x[b].flatten(), y[b].flatten()))
    assert mi[1] > 5 * mi[0]


def test_mask_restricts_mi_to_a_region(device):
    x = torch.rand(1, 30, 30, dtype=torch.float64, device=device)
    y = (x + 0.2 * torch.rand_like(x)) / 1.2
    mask = torch.zeros_like(x)
    mask[:, 5:20, 10:25] = 1
    inside = mask.bool()
    torch.testing.assert_close(
        softhist_ext.mutual_information(x, y, weight=mask)[0],
        softhist_ext.mutual_information(x[inside], y[inside]),
        rtol=1e-12, atol=1e-12)


def test_loss_gradients_and_reduction(device):
    x = torch.rand(2, 8, 8, dtype=torch.float64, device=device, requires_grad=True)
    y = torch.rand(2, 8, 8, dtype=torch.float64, device=device)
    loss = softhist_ext.losses.MutualInformationLoss(bins=8, reduction="none")
    assert torch.autograd.gradcheck(lambda x: loss(x, y), (x,))
    mean = softhist_ext.losses.MutualInformationLoss(bins=8)(x, y)
    torch.testing.assert_close(mean, -softhist_ext.mutual_information(x, y, bins=8).mean())
    scripted = torch.jit.script(softhist_ext.losses.MutualInformationLoss(bins=8))
    torch.testing.assert_close(scripted(x, y), mean)
    int_kappa = softhist_ext.losses.MutualInformationLoss(bins=8, kappa=8)
    torch.testing.assert_close(torch.jit.script(int_kappa)(x, y), int_kappa(x, y))
    with pytest.raises(ValueError, match="reduction must be"):
        softhist_ext.losses.MutualInformationLoss(reduction="max")


def test_close_to_monai_where_the_formulations_coincide():
    monai = pytest.importorskip("monai")
    # MONAI's gaussian Parzen window: num_bins centres from 0 to 1, sigma half
    # their spacing, sampled at the centres and renormalised per voxel. Ours
    # with bins centred on the same points and kappa * width = 2 (the
    # gaussian default) integrates over each bin instead: the same estimate up
    # to the midpoint rule and the renormalisation at the ends.
    torch.manual_seed(0)
    base = torch.rand(2, 1, 24, 24, 24)
    target = (base + 0.05 * torch.randn_like(base)).clamp(0, 1)
    pred = (0.7 * base + 0.3 * torch.rand_like(base)).clamp(0, 1)
    nb = 23
    half = 0.5 / (nb - 1)
    theirs = -monai.losses.GlobalMutualInformationLoss(num_bins=nb, reduction="none")(pred, target)
    ours = softhist_ext.mutual_information(pred, target, nb, -half, 1 + half, kernel="gaussian")
    torch.testing.assert_close(ours, theirs.reshape(-1).to(ours.dtype), rtol=0.03, atol=0)


def test_compiled_and_scripted_joint_histogram(device):
    x = torch.rand(2, 100, dtype=torch.float64, device=device, requires_grad=True)
    y = torch.rand(2, 100, dtype=torch.float64, device=device)

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return softhist_ext.histc2d(x, y, (6, 5), 0.0, 1.0, None, "bspline", None, -1).pow(2).sum()

    eager = loss(x, y)
    (g_eager,) = torch.autograd.grad(eager, x)
    for f in (torch.compile(loss, fullgraph=True), torch.jit.script(loss)):
        value = f(x, y)
        (grad,) = torch.autograd.grad(value, x)
        torch.testing.assert_close(value, eager)
        torch.testing.assert_close(grad, g_eager)
