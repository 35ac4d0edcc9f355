"""Kernels, weights, per-row histograms, density, straight-through, bincount
and the module, against the dense reference and torch's own functions."""

import pytest
import torch

import softhist_ext
from softhist_ext import reference

KERNELS = list(softhist_ext.KERNELS)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
@pytest.mark.parametrize("kappa_width", [None, 0.3, 2.5, 40.0])
def test_kernels_match_dense_reference(device, kernel, dtype, tol, kappa_width):
    bins, lo, hi = 30, -2.0, 3.0
    kappa = None if kappa_width is None else kappa_width * bins / (hi - lo)
    x = torch.randn(2000, dtype=torch.float64) * 1.5
    out = softhist_ext.histc(x.to(dtype).to(device), bins, lo, hi, kappa, kernel=kernel)
    expected = reference.histc(x.to(dtype).double(), bins, lo, hi, kappa, kernel)
    torch.testing.assert_close(out.cpu().double(), expected, rtol=tol, atol=tol * 100)


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel_conserves_mass(device, kernel):
    x = torch.randn(5000, dtype=torch.float64)
    for kappa in (0.5, 3.0, 50.0):
        out = softhist_ext.histc(x.to(device), 64, -100.0, 100.0, kappa, kernel=kernel)
        assert abs(out.sum().item() - 5000) < 1e-9 * 5000


def test_gaussian_is_the_bin_integral_of_the_forum_recipe(device):
    # Where the kernel is wide compared with a bin, the forum's midpoint rule
    # agrees with the bin integral; where it is narrow, the forum's miscounts
    # and ours doesn't.
    x = torch.rand(3000, dtype=torch.float64) * 0.6 + 0.2
    wide = softhist_ext.histc(x.to(device), 50, 0.0, 1.0, 1 / 0.1, kernel="gaussian").cpu()
    torch.testing.assert_close(wide, reference.forum_gaussian_histogram(x, 50, 0.0, 1.0, 0.1),
                               rtol=2e-3, atol=0.05)
    narrow_forum = reference.forum_gaussian_histogram(x, 50, 0.0, 1.0, 0.002)
    narrow = softhist_ext.histc(x.to(device), 50, 0.0, 1.0, 1 / 0.002, kernel="gaussian")
    assert abs(narrow.sum().item() - 3000) < 1e-6 and abs(narrow_forum.sum().item() - 3000) > 30


@pytest.mark.parametrize("kernel", KERNELS)
def test_compact_and_smooth_kernels_are_exact_at_their_support(device, kernel):
    # Samples exactly on edges and half-way: the kernels' closed forms.
    x = torch.tensor([0.0, 0.5, 1.0, 1.25, 2.0], dtype=torch.float64)
    out = softhist_ext.histc(x.to(device), 4, 0.0, 2.0, 2.0, kernel=kernel).cpu()
    torch.testing.assert_close(out, reference.histc(x, 4, 0.0, 2.0, 2.0, kernel), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kernel", KERNELS)
def test_weights(device, kernel):
    x = torch.randn(400, dtype=torch.float64)
    w = torch.rand(400, dtype=torch.float64) * 3 - 1
    out = softhist_ext.histc(x.to(device), 16, -2.0, 2.0, kernel=kernel, weight=w.to(device)).cpu()
    torch.testing.assert_close(out, reference.histc(x, 16, -2.0, 2.0, None, kernel, weight=w))
    ones = softhist_ext.histc(x.to(device), 16, -2.0, 2.0, kernel=kernel, weight=torch.ones_like(x).to(device))
    torch.testing.assert_close(ones, softhist_ext.histc(x.to(device), 16, -2.0, 2.0, kernel=kernel))


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_per_row_histograms_equal_one_histogram_per_slice(device, dim):
    x = torch.randn(3, 4, 50, dtype=torch.float64, device=device)
    out = softhist_ext.histc(x, 7, -2.0, 2.0, dim=dim)
    expected_shape = list(x.shape)
    expected_shape[dim] = 7
    assert list(out.shape) == expected_shape
    moved = x.movedim(dim, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    per_row = torch.stack([softhist_ext.histc(r, 7, -2.0, 2.0) for r in rows])
    torch.testing.assert_close(out.movedim(dim, -1).reshape(-1, 7), per_row)
    torch.testing.assert_close(out.cpu(), reference.histc(x.cpu(), 7, -2.0, 2.0, dim=dim))


def test_per_row_image_histograms(device):
    # kornia.enhance.image_histogram2d's job: (B, C, H*W) -> (B, C, bins).
    img = torch.rand(2, 3, 32, 32, device=device)
    out = softhist_ext.histc(img.flatten(2), 16, 0.0, 1.0, dim=-1)
    assert out.shape == (2, 3, 16)
    for b in range(2):
        for c in range(3):
            torch.testing.assert_close(out[b, c], softhist_ext.histc(img[b, c], 16, 0.0, 1.0))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dim", [None, 1])
def test_gradcheck_every_combination(device, kernel, weighted, dim):
    x = (torch.randn(3, 15, dtype=torch.float64, device=device) * 1.2).requires_grad_()
    w = torch.rand(3, 15, dtype=torch.float64, device=device, requires_grad=True) if weighted else None

    def f(x, w):
        return softhist_ext.histc(x, 6, -2.0, 2.0, 2.0, kernel=kernel, weight=w, dim=dim)

    inputs = (x, w)
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)
    # and the same gradients as the dense formula
    g = torch.randn_like(f(x, w))
    ours = torch.autograd.grad(f(x, w), [t for t in inputs if t is not None], g)
    dense = torch.autograd.grad(
        reference.histc(x, 6, -2.0, 2.0, 2.0, kernel, weight=w, dim=dim),
        [t for t in inputs if t is not None], g)
    for a, b in zip(ours, dense):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_density_integrates_to_one_like_torch_histogram(device):
    x = torch.randn(10000, dtype=torch.float64)
    out = softhist_ext.histc(x.to(device), 20, -3.0, 3.0, kernel="hard", density=True).cpu()
    hist, _ = torch.histogram(x, 20, range=(-3.0, 3.0), density=True)
    torch.testing.assert_close(out, hist, rtol=1e-6, atol=1e-6)
    soft = softhist_ext.histc(x.to(device), 20, -3.0, 3.0, density=True, dim=0)
    assert abs(soft.sum().item() * 6 / 20 - 1) < 1e-12
    xg = x[:30].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: softhist_ext.histc(x, 5, -2.0, 2.0, density=True), (xg,))
    torch.testing.assert_close(
        softhist_ext.histc(x[:300], 9, -2.0, 2.0, density=True),
        reference.histc(x[:300], 9, -2.0, 2.0, density=True))


@pytest.mark.parametrize("kernel", KERNELS)
def test_straight_through_counts_exactly_and_passes_the_kernel_gradient(device, kernel):
    x = torch.randn(10000, device=device, requires_grad=True)
    out = softhist_ext.histc(x, 40, -3.0, 3.0, kernel=kernel, straight_through=True)
    assert torch.equal(out.detach(), torch.histc(x.detach(), 40, -3.0, 3.0))
    g = torch.randn(40, device=device)
    (grad,) = torch.autograd.grad(out, x, g)
    (soft_grad,) = torch.autograd.grad(softhist_ext.histc(x, 40, -3.0, 3.0, kernel=kernel), x, g)
    assert torch.equal(grad, soft_grad)


def test_hard_kernel_is_torch_histc_with_weights(device):
    x = torch.randn(5000, device=device)
    x[:10] = 3.0  # max is counted, in the last bin
    x[10:20] = -3.0
    out = softhist_ext.histc(x, 30, -3.0, 3.0, kernel="hard")
    assert torch.equal(out, torch.histc(x, 30, -3.0, 3.0))
    w = torch.rand(5000, dtype=torch.float64, device=device, requires_grad=True)
    hw = softhist_ext.histc(x.double(), 30, -3.0, 3.0, kernel="hard", weight=w)
    hist, _ = torch.histogram(x.double().cpu(), 30, range=(-3.0, 3.0), weight=w.detach().cpu())
    torch.testing.assert_close(hw.cpu(), hist)
    with pytest.raises(RuntimeError, match="straight_through=True"):
        softhist_ext.histc(x.requires_grad_(), 30, -3.0, 3.0, kernel="hard").sum().backward()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_hard_kernel_counts_min_and_max_rounded_to_the_dtype(device, dtype):
    # float32(0.3) > 0.3 and float16(0.1) < 0.1: torch.histc compares samples
    # with min and max rounded to the input's dtype, and counts these.
    x = torch.tensor([0.1, 0.17, 0.3], dtype=dtype, device=device)
    hard = softhist_ext.histc(x, 4, 0.1, 0.3, kernel="hard")
    assert hard.tolist() == [1, 1, 0, 1]
    if dtype != torch.float16:  # torch.histc has no float16 CPU kernel
        assert torch.equal(hard, torch.histc(x, 4, 0.1, 0.3))
    st = softhist_ext.histc(x, 4, 0.1, 0.3, kappa=1e3, straight_through=True)
    assert torch.equal(st, hard)
    joint = softhist_ext.histc2d(x, x, 4, 0.1, 0.3, kernel="hard")
    assert torch.equal(joint.diagonal(), hard)


@pytest.mark.parametrize("dtype,lo,hi,bins", [(torch.float16, -1024.0, 3072.0, 64),
                                              (torch.float32, 0.0, 1e35, 10_000)])
def test_hard_kernel_counts_where_torch_histc_arithmetic_overflows(device, dtype, lo, hi, bins):
    # (x - min) * bins past the dtype's largest value (CT numbers in float16,
    # 64 bins): torch.histc's bin is garbage there. Each bin's middle lands in
    # that bin, min in the first and max in the last.
    middles = lo + (torch.arange(bins, dtype=torch.float64) + 0.5) * ((hi - lo) / bins)
    x = torch.cat([middles, torch.tensor([lo, hi], dtype=torch.float64)]).to(device, dtype)
    expected = torch.ones(bins, dtype=dtype)
    expected[[0, -1]] = 2
    hard = softhist_ext.histc(x, bins, lo, hi, kernel="hard")
    assert torch.equal(hard.cpu(), expected)
    assert torch.equal(softhist_ext.histc(x, bins, lo, hi, straight_through=True), hard)


def test_bincount_of_integers_is_exact_and_differentiable_in_weights(device):
    idx = torch.randint(0, 20, (1000,), device=device)
    assert torch.equal(softhist_ext.bincount(idx, minlength=25), torch.bincount(idx, minlength=25))
    w = torch.rand(1000, device=device, requires_grad=True)
    out = softhist_ext.bincount(idx, w, minlength=25)
    torch.testing.assert_close(out, torch.bincount(idx, w.detach(), minlength=25))
    g = torch.randn(25, device=device)
    (gw,) = torch.autograd.grad(out, w, g)
    torch.testing.assert_close(gw, g[idx])  # d/dw_i sum_b g_b count_b = g[idx_i]
    for weights in (w.double(), w.half(), w.bfloat16()):  # summed in float64; torch.bincount's dtype
        theirs = torch.bincount(idx.cpu(), weights.detach().cpu(), minlength=25)
        ours = softhist_ext.bincount(idx, weights, minlength=25)
        assert ours.dtype == theirs.dtype  # (float64 for 16-bit weights: bfloat16 makes 3000 3008)
        torch.testing.assert_close(ours.cpu(), theirs)
    assert softhist_ext.bincount(idx, w, minlength=3).shape == (int(idx.max()) + 1,)
    for small in (torch.uint8, torch.int8, torch.int16, torch.int32):  # index_add_ takes int64
        i = idx.to(small)
        torch.testing.assert_close(softhist_ext.bincount(i, w), torch.bincount(i, w.detach()))
    empty = torch.zeros(0, dtype=torch.long, device=device)
    w0 = torch.zeros(0, device=device, requires_grad=True)
    out0 = softhist_ext.bincount(empty, w0)  # as torch.bincount's: no bins
    assert out0.shape == (0,) and out0.dtype == w0.dtype and out0.requires_grad
    # under torch.compile(fullgraph=True), whose length comes from the data
    compiled = torch.compile(lambda i, w: softhist_ext.bincount(i, w, 25), fullgraph=True, backend="aot_eager")
    out_c = compiled(idx, w)
    torch.testing.assert_close(out_c, out)
    torch.testing.assert_close(torch.autograd.grad(out_c, w, g)[0], g[idx])


def test_bincount_of_floats_is_soft_counts_at_the_integers(device):
    x = (torch.rand(500, dtype=torch.float64) * 9).requires_grad_()
    out = softhist_ext.bincount(x.to(device), minlength=3, kappa=4.0, kernel="gaussian")
    assert out.shape == (9,)
    torch.testing.assert_close(out.cpu(), reference.histc(x.detach(), 9, -0.5, 8.5, 4.0, "gaussian"))
    assert torch.autograd.gradcheck(lambda x: softhist_ext.bincount(x, kappa=3.0), (x[:20],))
    # kappa as a 0-d tensor gets its gradient, as histc's
    kappa = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    g = torch.randn(9, dtype=torch.float64)
    (ours,) = torch.autograd.grad((softhist_ext.bincount(x.detach().to(device), kappa=kappa.to(device))
                                   .cpu() * g).sum(), kappa)
    (dense,) = torch.autograd.grad((reference.histc(x.detach(), 9, -0.5, 8.5, kappa) * g).sum(), kappa)
    torch.testing.assert_close(ours, dense)
    sharp = softhist_ext.bincount(torch.tensor([0.0, 1.0, 1.0, 4.0], device=device), kappa=1e4)
    torch.testing.assert_close(sharp.cpu(), torch.tensor([1.0, 2.0, 0.0, 0.0, 1.0]))
    empty = torch.zeros(0, device=device, requires_grad=True)
    w0 = torch.zeros(0, device=device, requires_grad=True)
    for out0 in (softhist_ext.bincount(empty), softhist_ext.bincount(empty, w0)):  # no bins
        assert out0.shape == (0,) and out0.requires_grad
        out0.sum().backward()
    assert empty.grad.shape == (0,) and w0.grad.shape == (0,)


def test_module_is_a_drop_in_for_the_forum_class():
    x = torch.rand(1000, dtype=torch.float64)
    forum_style = softhist_ext.nn.SoftHistogram(bins=25, min=0, max=1, sigma=75)
    torch.testing.assert_close(forum_style(x), reference.forum_soft_histogram(x, 25, 0.0, 1.0, 75.0))
    # Integer arguments, as the forum passes them, script too.
    torch.testing.assert_close(torch.jit.script(forum_style)(x), forum_style(x))
    module = softhist_ext.nn.SoftHistogram(25, 0.0, 1.0, 3.0, kernel="bspline")
    scripted = torch.jit.script(module)
    torch.testing.assert_close(scripted(x), module(x))
    torch.testing.assert_close(module(x), reference.histc(x, 25, 0.0, 1.0, 3.0, "bspline"))


def test_scripted_and_compiled_family_calls(device):
    def f(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return softhist_ext.histc(x, 8, -2.0, 2.0, None, "gaussian", w, 1, True, False)

    x = torch.randn(2, 30, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.rand(2, 30, dtype=torch.float64, device=device)
    eager = f(x, w)
    (g_eager,) = torch.autograd.grad(eager.pow(2).sum(), x)
    for g in (torch.jit.script(f), torch.compile(f, fullgraph=True)):
        out = g(x, w)
        (grad,) = torch.autograd.grad(out.pow(2).sum(), x)
        torch.testing.assert_close(out, eager)
        torch.testing.assert_close(grad, g_eager)


def test_soft_histogram_checks_its_arguments_when_built():
    # Not at the first forward (a fixed layer had built with any bins or kernel).
    for kwargs, words in ((dict(kernel="foo"), "kernel must be one of"), (dict(bins=0), "bins must be between 1"),
                          (dict(min=1.0, max=0.0), "min must not exceed max"),
                          (dict(kappa=-1.0), "kappa must be a positive"),
                          (dict(kernel="hard", kappa=2.0), "hard kernel takes no kappa")):
        args = {"bins": 4, "min": 0.0, "max": 1.0, **kwargs}
        with pytest.raises(RuntimeError, match=words):
            softhist_ext.nn.SoftHistogram(**args)
    # The hard kernel's range is the input's dtype's to judge, at the forward.
    x = torch.tensor([0.0, 1e39, 5e39], dtype=torch.float64)
    layer = softhist_ext.nn.SoftHistogram(4, 0.0, 1e40, kernel="hard")
    assert torch.equal(layer(x), torch.histc(x, 4, 0.0, 1e40))


def test_family_argument_errors():
    x = torch.randn(10)
    with pytest.raises(RuntimeError, match='kernel must be one of "logistic"'):
        softhist_ext.histc(x, 5, kernel="cosine")
    with pytest.raises(ValueError, match="weight must have the input's shape"):
        softhist_ext.histc(x, 5, weight=torch.ones(9))
    with pytest.raises(IndexError, match=r"histc's dim must be in \[-1, 0\] for a 1-d input, got 3"):
        softhist_ext.histc(x, 5, dim=3)
    with pytest.raises(IndexError, match=r"histc2d's dim must be in \[-2, 1\] for a 2-d input, got -3"):
        softhist_ext.histc2d(x.view(2, 5), x.view(2, 5), 4, dim=-3)
    with pytest.raises(ValueError, match="must be 1-d"):
        softhist_ext.bincount(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="bincount's input must be non-negative, as torch.bincount's, got -2"):
        softhist_ext.bincount(torch.tensor([3, -2, 0]), torch.ones(3))


def test_many_short_rows_equal_the_dense_reference():
    # Rows of a few samples each are made one at a time, a run of them per
    # thread (301 rows: runs of unequal length), and written as they are done.
    g = torch.Generator().manual_seed(3)
    x = torch.randn(301, 7, generator=g, dtype=torch.float64) * 1.5
    y = torch.randn(301, 7, generator=g, dtype=torch.float64)
    w = torch.rand(301, 7, generator=g, dtype=torch.float64)
    for kernel in ("logistic", "bspline", "box"):
        rows = softhist_ext.histc(x, 16, -3.0, 3.0, kernel=kernel, weight=w, dim=-1)
        torch.testing.assert_close(rows, reference.histc(x, 16, -3.0, 3.0, None, kernel, w, dim=-1))
        joint = softhist_ext.histc2d(x, y, (5, 6), (-3.0, -2.0), (3.0, 2.0), kernel=kernel, weight=w, dim=-1)
        for r in (0, 150, 300):
            expected = reference.histc2d(x[r], y[r], (5, 6), (-3.0, -2.0), (3.0, 2.0),
                                         (5 / 6 * reference.default_kappa_width(kernel),
                                          6 / 4 * reference.default_kappa_width(kernel)), kernel, w[r])
            torch.testing.assert_close(joint[r], expected)
    hard = softhist_ext.histc(x, 16, -3.0, 3.0, kernel="hard", dim=-1)
    assert torch.equal(hard, torch.stack([torch.histc(row, 16, -3.0, 3.0) for row in x]))
