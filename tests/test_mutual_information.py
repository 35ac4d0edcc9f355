"""Joint histograms and mutual information: against the dense outer product,
closed-form properties of MI, and MONAI where the formulations coincide."""

import math

import pytest
import torch
from torch.library import opcheck

import softhist_ext
from softhist_ext import losses, reference

KERNELS = list(softhist_ext.KERNELS)


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
@pytest.mark.parametrize("bins", [(6, 5), (6, 5, 4)])
def test_opcheck_joint_ops(device, kernel, bins):
    ops = torch.ops.softhist
    smooth = kernel != "hard"
    coords = [torch.randn(2, 30, dtype=torch.float64, device=device, requires_grad=smooth) for _ in bins]
    w = torch.rand(2, 30, dtype=torch.float64, device=device, requires_grad=True)
    p = torch.stack([ops.params(c.detach(), b, -2.0, 2.0, 2.0 + a / 2 if smooth else None, kernel) for a, (c, b) in enumerate(zip(coords, bins))])
    h = torch.randn(2, *bins, dtype=torch.float64, device=device, requires_grad=True)
    orders = [[0] * len(bins)]
    if smooth:
        orders += [[1] + [0] * (len(bins) - 1), [0] * (len(bins) - 1) + [2]]
    for o in orders:
        opcheck(ops.scatter, (coords, w, p, list(bins), o, kernel))
        opcheck(ops.gather, (coords, h, p, o, kernel))


def test_mi_of_independent_samples_is_about_zero(device):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, 1 << 18, generator=gen, dtype=torch.float64)
    y = torch.rand(1, 1 << 18, generator=gen, dtype=torch.float64)
    mi = softhist_ext.mutual_information(x.to(device), y.to(device), bins=16, dim=[-1])
    # The plug-in estimate's bias is about (bins - 1)^2 / (2N) = 4e-4 nats.
    assert 0 <= mi.item() < 2e-3


def test_mi_of_an_image_with_itself_is_its_entropy(device):
    x = torch.rand(2, 64, 64, dtype=torch.float64, device=device)
    for b in range(2):
        p = torch.histc(x[b].cpu(), 32, 0.0, 1.0) / x[b].numel()
        entropy = -(p[p > 0] * p[p > 0].log()).sum()
        hard = softhist_ext.mutual_information(x[b].flatten(), x[b].flatten(), 32, 0.0, 1.0, kernel="hard")
        torch.testing.assert_close(hard.cpu(), entropy, rtol=1e-12, atol=1e-12)
    # A soft kernel spreads each sample off the diagonal: MI(x, x) is then below
    # H(x), approaching it as the kernel sharpens.
    item = [1, 2]
    sharp = softhist_ext.mutual_information(x, x, 32, 0.0, 1.0, kappa=32 * 5000.0, dim=item)
    hard = softhist_ext.mutual_information(x, x, 32, 0.0, 1.0, kernel="hard", dim=item)
    torch.testing.assert_close(sharp, hard, rtol=5e-3, atol=0)
    assert (softhist_ext.mutual_information(x, x, dim=item) < hard).all()
    norm = softhist_ext.mutual_information(x, x, kernel="hard", normalized=True, dim=item)
    torch.testing.assert_close(norm, torch.ones_like(norm))


@pytest.mark.parametrize("kernel", list(softhist_ext.KERNELS) + ["hard"])
def test_mi_is_invariant_to_an_invertible_remap(device, kernel):
    x = torch.rand(2, 1, 40, 40, dtype=torch.float64, device=device)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1 - 1e-9)
    for conserve_mass in (True, False):
        mi = softhist_ext.mutual_information(x, y, kernel=kernel, conserve_mass=conserve_mass)
        # Reflection maps bins onto bins (and each item's range onto itself),
        # and symmetric kernels onto themselves.
        torch.testing.assert_close(
            softhist_ext.mutual_information(x, 1 - y, kernel=kernel, conserve_mass=conserve_mass),
            mi, rtol=1e-10, atol=1e-12)
    if kernel == "hard":
        # So does moving the top half of the bins below the bottom half.
        mi = softhist_ext.mutual_information(x, y, 32, 0.0, 1.0, kernel=kernel)
        shuffled = torch.where(y < 0.5, y + 0.5, y - 0.5)
        torch.testing.assert_close(softhist_ext.mutual_information(x, shuffled, 32, 0.0, 1.0, kernel=kernel),
                                   mi, rtol=1e-10, atol=1e-12)


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
    x = torch.rand(1, 1, 30, 30, dtype=torch.float64, device=device)
    y = (x + 0.2 * torch.rand_like(x)) / 1.2
    mask = torch.zeros_like(x)
    mask[..., 5:20, 10:25] = 1
    inside = mask.bool()
    torch.testing.assert_close(
        softhist_ext.mutual_information(x, y, weight=mask)[0],
        softhist_ext.mutual_information(x[inside], y[inside]),
        rtol=1e-12, atol=1e-12)


def test_loss_gradients_and_reduction(device):
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, device=device, requires_grad=True)
    y = torch.rand(2, 1, 8, 8, dtype=torch.float64, device=device)
    # A fixed range: each item's own range (the default) is a constant for
    # autograd, which numerical differentiation of its extreme samples is not.
    loss = softhist_ext.losses.MutualInformationLoss(bins=8, min=-0.1, max=1.1, reduction="none")
    assert torch.autograd.gradcheck(lambda x: loss(x, y), (x,))
    mean = softhist_ext.losses.MutualInformationLoss(bins=8)(x, y)
    torch.testing.assert_close(mean, -softhist_ext.mutual_information(x, y, bins=8).mean())
    scripted = torch.jit.script(softhist_ext.losses.MutualInformationLoss(bins=8))
    torch.testing.assert_close(scripted(x, y), mean)
    int_kappa = softhist_ext.losses.MutualInformationLoss(bins=8, min=0, max=1, kappa=8)
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


def test_compiled_mi_of_an_item_with_no_mass_is_zero_not_nan():
    # Compiled code skips the eager error (a data-dependent branch); float32's
    # mass had been floored at 1e-300, which rounds to 0: 0 / 0.
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    y = torch.rand(2, 1, 8, 8)
    w = torch.ones(2, 1, 8, 8)
    w[1] = 0
    for args in ((), (8, 0.0, 1.0)):
        mi = torch.compile(lambda a, b, w: softhist_ext.mutual_information(a, b, *args, weight=w),
                           backend="eager", fullgraph=True)(x, y, w)
        torch.testing.assert_close(mi[0], softhist_ext.mutual_information(x[:1], y[:1], *args)[0])
        assert mi[1] == 0
        (grad,) = torch.autograd.grad(mi.sum(), x)
        assert bool(grad.isfinite().all())


def _volumes(shape, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(shape, generator=gen, dtype=torch.float64)
    other = (0.6 * base + 0.4 * torch.rand(shape, generator=gen, dtype=torch.float64)) ** 2
    return base.to(dtype), other.to(dtype)


@pytest.mark.parametrize("scale, offset", [(255.0, 0.0), (255.0, 5.0), (4000.0, -1000.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mi_of_real_intensities_equals_mi_of_the_unit_rescaled_volumes(device, scale, offset, dtype):
    # Intensities as users have them (8-bit images, CT units): each item's own
    # range by default, so the MI is that of the volumes rescaled to [0, 1].
    unit_x, unit_y = _volumes((3, 1, 12, 14, 10), dtype)
    x, y = unit_x * scale + offset, unit_y * (scale / 2) + offset
    mi = softhist_ext.mutual_information(x.to(device), y.to(device))
    unit = softhist_ext.mutual_information(unit_x.to(device), unit_y.to(device))
    assert mi.shape == (3,) and torch.isfinite(mi).all() and (mi > 0.1).all()
    tol = 1e-10 if dtype == torch.float64 else 2e-4
    torch.testing.assert_close(mi, unit, rtol=tol, atol=tol)
    # One unbatched volume, as (1, 1, D, H, W): one value, item 0's.
    one = softhist_ext.mutual_information(x[0, 0][None, None].to(device), y[0, 0][None, None].to(device))
    torch.testing.assert_close(one, mi[:1], rtol=tol, atol=tol)
    # The loss agrees, and its gradient is finite.
    xg = x.to(device).requires_grad_()
    loss = softhist_ext.losses.MutualInformationLoss()(xg, y.to(device))
    loss.backward()
    torch.testing.assert_close(loss, -mi.mean())
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


def test_mi_own_range_equals_the_fixed_range_it_takes(device):
    # Values and gradients: the own range is the fixed range [min, max] of
    # the item's samples, a constant for autograd.
    x, y = _volumes((1, 1, 9, 11), torch.float64, seed=4)
    x = (x * 900 - 300).to(device).requires_grad_()
    y = (y * 80).to(device)
    own = softhist_ext.mutual_information(x, y, 16)
    lo = (float(x.detach().min()), float(y.min()))
    hi = (float(x.detach().max()), float(y.max()))
    fixed = softhist_ext.mutual_information(x, y, 16, lo, hi)
    torch.testing.assert_close(own, fixed, rtol=1e-10, atol=1e-12)
    (g_own,) = torch.autograd.grad(own.sum(), x)
    (g_fixed,) = torch.autograd.grad(fixed.sum(), x)
    torch.testing.assert_close(g_own, g_fixed, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("shape", [(20, 20), (6, 20, 20)])
def test_mi_of_ambiguous_shapes_raises_and_says_how_to_call_it(shape):
    x, y = _volumes(shape)
    with pytest.raises(ValueError, match=r"x\[None, None\].*dim"):
        softhist_ext.mutual_information(x, y)
    with pytest.raises(ValueError, match=r"x\[None, None\]"):
        softhist_ext.losses.MutualInformationLoss()(x, y)
    # Saying which dimensions hold one item's samples works.
    one = softhist_ext.mutual_information(x, y, dim=list(range(len(shape))))
    torch.testing.assert_close(one, softhist_ext.mutual_information(x[None, None], y[None, None])[0])


def test_mi_without_mass_raises_never_nan(device):
    x, y = _volumes((2, 1, 8, 8))
    x, y = x.to(device), y.to(device)
    x_nan = x.clone()
    x_nan[1] = float("nan")
    with pytest.raises(ValueError, match="item 1 .*has no mass"):
        softhist_ext.mutual_information(x_nan, y)
    mask = torch.ones_like(x)
    mask[0] = 0
    with pytest.raises(ValueError, match="item 0 .*has no mass"):
        softhist_ext.mutual_information(x, y, weight=mask)
    with pytest.raises(ValueError, match="item 0 .*inside \\[min, max\\]"):
        softhist_ext.mutual_information(x + 10, y, 8, (0.0, 0.0), (1.0, 1.0))
    scripted = torch.jit.script(softhist_ext.mutual_information)
    with pytest.raises(Exception, match="has no mass"):
        scripted(x_nan, y)


def test_normalized_mi_of_marginals_in_one_bin_is_one_never_nan(device):
    # H(x) + H(y) = 0: 1, as sklearn's normalized_mutual_info_score gives two
    # constant labelings, with a finite gradient.
    const = torch.full((1, 1, 8, 8), 3.0, device=device)
    value = softhist_ext.mutual_information(const, const, kernel="hard", normalized=True)
    assert value.item() == 1.0
    y = torch.rand(1, 1, 8, 8, device=device, requires_grad=True)
    value = softhist_ext.mutual_information(y, y.detach() ** 2, bins=1, normalized=True)
    (grad,) = torch.autograd.grad(value.sum(), y)
    assert value.item() == 1.0 and torch.isfinite(grad).all()


def test_mi_warns_when_a_fixed_range_leaves_out_much_of_the_mass():
    x, y = _volumes((1, 1, 16, 16))
    with pytest.warns(UserWarning, match=r"falls outside the given \[min, max\]"):
        mi = softhist_ext.mutual_information(x * 255, y * 255, 32, 0.0, 128.0)
    assert torch.isfinite(mi).all()
    # The warning names the user's line, through the loss module too (a fixed
    # stacklevel had named the module's).
    for call in [lambda: softhist_ext.mutual_information(x * 255, y * 255, 32, 0.0, 128.0),
                 lambda: softhist_ext.losses.MutualInformationLoss(32, 0.0, 128.0)(x * 255, y * 255)]:
        with pytest.warns(UserWarning, match="falls outside") as record:
            call()
        assert record[0].filename == __file__
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        softhist_ext.mutual_information(x * 255, y * 255, 32, 0.0, 255.0)
        softhist_ext.mutual_information(x * 255, y * 255)


def test_mi_argument_errors():
    x, y = _volumes((1, 1, 8, 8))
    with pytest.raises(ValueError, match="min and max together"):
        softhist_ext.mutual_information(x, y, min=0.0)
    with pytest.raises(ValueError, match="pass min and max too"):
        softhist_ext.mutual_information(x, y, kappa=30.0)
    with pytest.raises(IndexError, match="dim must be in"):
        softhist_ext.mutual_information(x, y, dim=[4])
    # Integer x or y, in either order: an integer y had been cast, an integer
    # x refused, and with a range refused for its "shape, dtype and device".
    levels = (x * 255).long()
    for a, b in ((levels, y), (x, levels)):
        for args in ((), (32, 0.0, 255.0)):
            with pytest.raises(ValueError, match="needs floating-point x and y, got .*convert them"):
                softhist_ext.mutual_information(a, b, *args)
    # min == max would be histc2d's range over the whole batch, not a fixed one
    for lo, hi in ((0.0, 0.0), ((0.0, 5.0), (1.0, 5.0))):
        with pytest.raises(ValueError, match="min must be below max on each axis"):
            softhist_ext.mutual_information(x, y, 8, lo, hi)
    for kwargs, words in ((dict(min=0.0), "min and max together"), (dict(kappa=3.0), "pass min and max too"),
                          (dict(min=1.0, max=1.0), "min must be below max"), (dict(bins=0), "bins must be >= 1"),
                          (dict(kernel="cosine"), "kernel must be one of .*hard, got 'cosine'")):
        with pytest.raises(ValueError, match="MutualInformationLoss.*" + words):
            losses.MutualInformationLoss(**kwargs)


def test_conserve_mass_is_the_default_for_mi_and_counts_the_ends(device):
    # Half the voxels at the lowest intensity (a background): with open ends
    # the background keeps its whole mass; without, the kernel's half beyond
    # the range is lost and the marginal is biased.
    x, y = _volumes((1, 1, 16, 16), torch.float64)
    x[..., :8] = 0
    y[..., :8] = 0
    x, y = x.to(device), y.to(device)
    default = softhist_ext.mutual_information(x, y, 16)
    torch.testing.assert_close(default, softhist_ext.mutual_information(x, y, 16, conserve_mass=True))
    assert not torch.allclose(default, softhist_ext.mutual_information(x, y, 16, conserve_mass=False))
    lo, hi = (0.0, 0.0), (float(x.max()), float(y.max()))
    joint = softhist_ext.histc2d(x.flatten(), y.flatten(), 16, lo, hi, None, "bspline", conserve_mass=True)
    dense = reference.histc2d(x.flatten().cpu(), y.flatten().cpu(), (16, 16), lo, hi,
                              (16 / hi[0], 16 / hi[1]), "bspline", conserve_mass=True)
    torch.testing.assert_close(joint.cpu(), dense, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(joint.sum().item(), float(x.numel()), rtol=1e-12, atol=0)


def test_mi_of_an_empty_batch_is_empty():
    x = torch.rand(0, 1, 8, 8)
    for args in ((), (8, 0.0, 1.0)):  # the items' own range; a fixed one
        assert softhist_ext.mutual_information(x, x, *args).shape == (0,)
        assert softhist_ext.losses.MutualInformationLoss(*args, reduction="none")(x, x).shape == (0,)


@pytest.mark.parametrize("args", [(), (16, 0.0, 1.0)])
def test_mi_takes_a_mask_of_any_dtype_whatever_the_range(args):
    gen = torch.Generator().manual_seed(7)
    x, y = torch.rand(2, 1, 16, 16, generator=gen), torch.rand(2, 1, 16, 16, generator=gen)
    mask = torch.rand(2, 1, 16, 16, generator=gen) > 0.3
    expected = softhist_ext.mutual_information(x, y, *args, weight=mask.float())
    for w in (mask, mask.double(), mask.to(torch.uint8)):
        torch.testing.assert_close(softhist_ext.mutual_information(x, y, *args, weight=w), expected)
    kept = mask[0].flatten()  # a mask leaves its pairs out
    alone = softhist_ext.mutual_information(x[0].flatten()[kept], y[0].flatten()[kept], *args)
    torch.testing.assert_close(expected[0], alone.reshape(()))


def test_mi_of_mixed_float_dtypes_is_in_the_wider_one():
    x, y = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8, dtype=torch.float64)
    for args in ((), (8, 0.0, 1.0)):
        for b in (1, 2):
            mixed = softhist_ext.mutual_information(x[:b], y[:b], *args)
            assert mixed.dtype == torch.float64
            torch.testing.assert_close(mixed, softhist_ext.mutual_information(x[:b].double(), y[:b], *args))
