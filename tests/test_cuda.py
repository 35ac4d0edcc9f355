"""CUDA-only properties. The shared tests already run on "cuda" through the
`device` fixture; these pin down what only the CUDA kernels promise:
bitwise reproducibility, the input's device, CUDA-graph capture, and the CPU's
results for every kernel, order and dtype (including the paths for many bins)."""

import itertools

import pytest
import torch

import softhist_ext

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

ops = torch.ops.softhist
SMOOTH = list(softhist_ext.KERNELS)


def forward_backward(x, g, *args, weight=None, **kwargs):
    xr = x.detach().requires_grad_()
    out = softhist_ext.histc(xr, *args, weight=weight, **kwargs)
    out.backward(g)
    return out, xr.grad


def close_to_cpu(actual, expected, rtol):
    """actual (CUDA) == expected (CPU) up to rtol of the largest |value|."""
    scale = expected.abs().max().item() if expected.numel() else 0.0
    torch.testing.assert_close(actual.cpu(), expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("kernel", ["logistic", "gaussian", "bspline"])
def test_scatter_and_gradient_are_bitwise_reproducible(kernel):
    # Many samples per bin, so float atomics would reorder the sums.
    x = torch.randn(4_000_000, device="cuda")
    w = torch.rand_like(x)
    g = torch.randn(64, device="cuda")
    runs = [forward_backward(x, g, 64, -3.0, 3.0, kernel=kernel, weight=w) for _ in range(3)]
    for out, grad in runs[1:]:
        assert torch.equal(out, runs[0][0]) and torch.equal(grad, runs[0][1])


def test_signed_weights_of_double_backward_are_reproducible():
    x = torch.randn(3, 1_000_000, dtype=torch.float64, device="cuda")
    w = torch.randn_like(x)  # the upstream gradient in double backward
    p = ops.params(x, 100, -4.0, 4.0, None, "gaussian")
    runs = [ops.scatter([x], w, p[None], [100], [1], "gaussian") for _ in range(3)]
    assert all(torch.equal(r, runs[0]) for r in runs[1:])


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_tensors_on_another_device():
    x0 = torch.randn(100_000, device="cuda:0")
    g0 = torch.randn(32, device="cuda:0")
    expected = forward_backward(x0, g0, 32)
    with torch.cuda.device(0):  # the current device is not the input's
        out, grad = forward_backward(x0.to("cuda:1"), g0.to("cuda:1"), 32)
    assert out.device == grad.device == torch.device("cuda:1")
    assert torch.equal(out.cpu(), expected[0].cpu()) and torch.equal(grad.cpu(), expected[1].cpu())


@pytest.mark.parametrize("lo,hi", [(-3.0, 3.0), (0.0, 0.0)])  # (0, 0): range from the data
def test_cuda_graph_capture_of_forward_and_backward(lo, hi):
    x = torch.randn(200_000, device="cuda", requires_grad=True)
    g = torch.randn(64, device="cuda")

    def step():
        out = softhist_ext.histc(x, 64, lo, hi)
        out.backward(g)
        return out

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the graph, as capture requires
        for _ in range(2):
            x.grad = None
            step()
    torch.cuda.current_stream().wait_stream(side)
    x.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured_out = step()
    captured_grad = x.grad

    with torch.no_grad():
        x.copy_(torch.randn_like(x) * 2 + 0.5)  # new data, new range for (0, 0)
    graph.replay()
    torch.cuda.synchronize()
    expected = forward_backward(x, g, 64, lo, hi)
    assert torch.equal(captured_out, expected[0]) and torch.equal(captured_grad, expected[1])


def test_params_from_data_equal_the_cpu():
    x = torch.randn(3, 10_000, dtype=torch.float64) * 7 + 2
    x[0, 5] = float("nan")
    x[1, 7] = float("inf")
    for kappa in (None, 3.0):
        for kernel in SMOOTH:
            expected = ops.params(x, 50, 0.0, 0.0, kappa, kernel)
            assert torch.equal(ops.params(x.cuda(), 50, 0.0, 0.0, kappa, kernel).cpu(), expected)


def test_params_of_ranges_too_narrow_to_split_equal_the_cpu():
    # Ranges from the data that can't be cut into 999 representable bins (a
    # few ulps wide; one point, where -1 and +1 round away) are widened about
    # their midpoint (range.h): on the device bitwise as on the host.
    for data in ([1e15, 1e15 + 0.375], [3e17, 3e17], [-7e-310, -6e-310]):
        x = torch.tensor(data, dtype=torch.float64)
        for kernel in SMOOTH:
            expected = ops.params(x, 999, 0.0, 0.0, None, kernel)
            assert torch.equal(ops.params(x.cuda(), 999, 0.0, 0.0, None, kernel).cpu(), expected)


@pytest.mark.parametrize("kernel", SMOOTH)
@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("bins", [40, 20_000])  # 20,000: bins tiled, histogram not in shared memory
def test_float64_scatter_and_gather_equal_the_cpu(kernel, order, bins):
    x = torch.randn(3, 30_000, dtype=torch.float64) * 1.5
    w = torch.randn_like(x)
    h = torch.randn(3, bins, dtype=torch.float64)
    p = ops.params(x, bins, -4.0, 4.0, None, kernel)
    pc = p.cuda()
    close_to_cpu(ops.scatter([x.cuda()], w.cuda(), pc[None], [bins], [order], kernel),
                 ops.scatter([x], w, p[None], [bins], [order], kernel), 1e-11)
    close_to_cpu(ops.scatter([x.cuda()], None, pc[None], [bins], [order], kernel),
                 ops.scatter([x], None, p[None], [bins], [order], kernel), 1e-11)
    close_to_cpu(ops.gather([x.cuda()], h.cuda(), pc[None], [order], kernel),
                 ops.gather([x], h, p[None], [order], kernel), 1e-11)


@pytest.mark.parametrize("kernel", SMOOTH)
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("bins", [40, 8192])  # 8192: bins + 1 edge slots over two tiles
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-11), (torch.float32, 1e-5)])
@pytest.mark.parametrize("conserve_mass", [False, True])
def test_edge_sums_equal_the_cpu_and_are_reproducible(kernel, order, bins, dtype, rtol, conserve_mass):
    x = torch.randn(2, 30_000, dtype=dtype) * 1.5
    w = torch.randn_like(x)
    c = torch.randn(2, bins + 1, dtype=dtype)
    p = ops.params(x, bins, -4.0, 4.0, None, kernel, conserve_mass)[None]
    pc = p.cuda()
    runs = [ops.scatter([x.cuda()], w.cuda(), pc, [bins], [order], kernel, [0]) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    close_to_cpu(runs[0], ops.scatter([x], w, p, [bins], [order], kernel, [0]), rtol)
    close_to_cpu(ops.gather([x.cuda()], c.cuda(), pc, [order], kernel, [0]),
                 ops.gather([x], c, p, [order], kernel, [0]), rtol)


@pytest.mark.parametrize("kernel", SMOOTH)
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-11), (torch.float32, 1e-5)])
@pytest.mark.parametrize("conserve_mass", [False, True])
def test_explicit_uneven_edges_equal_the_cpu(kernel, dtype, rtol, conserve_mass):
    # Widths 100x apart; every op the gradients use, orders 0 to 2.
    gen = torch.Generator().manual_seed(1)
    widths = torch.rand(50, generator=gen, dtype=torch.float64) * 10 + 0.1
    edges = -4.0 + 8.0 * torch.cat([torch.zeros(1, dtype=torch.float64), widths.cumsum(0)]) / widths.sum()
    x = torch.randn(2, 30_000, dtype=dtype) * 1.5
    w, h, c = torch.randn_like(x), torch.randn(2, 50, dtype=dtype), torch.randn(2, 51, dtype=dtype)
    p = torch.cat([torch.tensor([0.0, 0.0, 20.0, float(conserve_mass)], dtype=torch.float64), edges])[None]
    pc, xc = p.cuda(), x.cuda()
    for order in [0, 1, 2]:
        close_to_cpu(ops.scatter([xc], w.cuda(), pc, [50], [order], kernel),
                     ops.scatter([x], w, p, [50], [order], kernel), rtol)
        close_to_cpu(ops.gather([xc], h.cuda(), pc, [order], kernel),
                     ops.gather([x], h, p, [order], kernel), rtol)
    for order in [1, 2]:
        close_to_cpu(ops.scatter([xc], w.cuda(), pc, [50], [order], kernel, [0]),
                     ops.scatter([x], w, p, [50], [order], kernel, [0]), rtol)
        close_to_cpu(ops.gather([xc], c.cuda(), pc, [order], kernel, [0]),
                     ops.gather([x], c, p, [order], kernel, [0]), rtol)


def test_learnable_edges_gradients_equal_the_cpu():
    edges = torch.tensor([-3.0, -1.0, -0.8, 0.0, 0.1, 1.5, 3.0], dtype=torch.float64)
    x = torch.randn(100_000, dtype=torch.float64)
    grads = []
    for device in ["cpu", "cuda"]:
        e = edges.to(device).requires_grad_()
        k = torch.tensor(5.0, dtype=torch.float64, device=device, requires_grad=True)
        hist = softhist_ext.histogram(x.to(device), e, kappa=k).hist
        grads.append(torch.autograd.grad(hist.pow(2).sum(), [e, k]))
    for a, b in zip(*grads):
        close_to_cpu(b, a, 1e-10)


def test_one_pass_backward_is_cpu_only_and_says_so():
    # CUDA's backward takes gather and scatter at the edges (compared with the
    # CPU's single pass and saved edge sums just above), and its forward keeps
    # no places; a direct call names them.
    x = torch.randn(2, 100, dtype=torch.float64, device="cuda")
    p = ops.params(x, 8, -2.0, 2.0, None, "logistic")[None]
    with pytest.raises(RuntimeError, match="edge_gather_scatter runs on the CPU only"):
        ops.edge_gather_scatter(x, None, torch.randn(2, 9, dtype=torch.float64, device="cuda"), p, 1,
                                "logistic")
    with pytest.raises(RuntimeError, match="scatter_edge_sums runs on the CPU only"):
        ops.scatter_edge_sums(x, None, p, 8, "logistic")
    with pytest.raises(RuntimeError, match="scatter_places runs on the CPU only"):
        ops.scatter_places(x, None, p, 8, "bspline")
    pieces, deltas = torch.zeros_like(x, dtype=torch.int32), torch.zeros_like(x)
    with pytest.raises(RuntimeError, match="gather_at_places runs on the CPU only"):
        ops.gather_at_places(x, torch.randn(2, 8, dtype=torch.float64, device="cuda"), p, 1,
                             "bspline", pieces, deltas, torch.ones((), dtype=torch.bool, device="cuda"))


def test_hard_kernel_equals_the_cpu_and_is_reproducible():
    x = torch.randn(2, 50_000, dtype=torch.float64)
    w = torch.rand_like(x)
    h = torch.randn(2, 30, dtype=torch.float64)
    p = ops.params(x, 30, -2.0, 2.0, None, "hard")
    for weight in (None, w):
        expected = ops.scatter([x], weight, p[None], [30], [0], "hard")
        wc = None if weight is None else w.cuda()
        runs = [ops.scatter([x.cuda()], wc, p.cuda()[None], [30], [0], "hard") for _ in range(3)]
        assert all(torch.equal(r, runs[0]) for r in runs[1:])
        close_to_cpu(runs[0], expected, 1e-13)
    assert torch.equal(ops.gather([x.cuda()], h.cuda(), p.cuda()[None], [0], "hard").cpu(),
                       ops.gather([x], h, p[None], [0], "hard"))


@pytest.mark.parametrize(
    "dtype,rtol", [(torch.float32, 1e-5), (torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)]
)
@pytest.mark.parametrize("kernel", SMOOTH)
def test_low_precision_inputs_equal_the_cpu(dtype, rtol, kernel):
    # Computed in float and summed in float64 on both; only the last bit of the
    # result may differ.
    x = (torch.randn(2, 20_000) * 1.5).to(dtype)
    w = torch.rand(2, 20_000).to(dtype)
    h = torch.randn(2, 64).to(dtype)
    p = ops.params(x, 64, -4.0, 4.0, None, kernel)
    pc = p.cuda()
    close_to_cpu(ops.scatter([x.cuda()], w.cuda(), pc[None], [64], [0], kernel),
                 ops.scatter([x], w, p[None], [64], [0], kernel), rtol)
    close_to_cpu(ops.gather([x.cuda()], h.cuda(), pc[None], [1], kernel),
                 ops.gather([x], h, p[None], [1], kernel), rtol)


def test_every_sample_in_one_bin_equals_the_cpu():
    # Whole warps add to the same bins (the contended case); their windows
    # start at one or two different edges.
    x = 0.3 + torch.rand(1_000_000, dtype=torch.float64) * 0.03
    p = ops.params(x, 256, -4.0, 4.0, 8 * 256 / 8.0, "logistic")
    expected = ops.scatter([x], None, p[None], [256], [0], "logistic")
    runs = [ops.scatter([x.cuda()], None, p.cuda()[None], [256], [0], "logistic") for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    close_to_cpu(runs[0], expected, 1e-11)


def test_nonfinite_weights_give_the_cpus_nan_and_inf():
    x = torch.tensor([[0.1, 0.5, -0.7, 1.2]] * 3, dtype=torch.float64)
    w = torch.tensor([[1.0, float("inf"), 1.0, 1.0],
                      [1.0, float("nan"), 1.0, 1.0],
                      [float("inf"), float("-inf"), 1.0, 1.0]], dtype=torch.float64)
    p = ops.params(x, 8, -2.0, 2.0, 3.0, "bspline")
    expected = ops.scatter([x], w, p[None], [8], [0], "bspline")
    actual = ops.scatter([x.cuda()], w.cuda(), p.cuda()[None], [8], [0], "bspline").cpu()
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


# Joint histograms over two axes (scatter / gather with two coordinates).

ORDER_PAIRS = [(ox, oy) for ox in range(4) for oy in range(4)]


def joint_case(dtype, bins=(24, 20), rows=2, n=6000):
    x = (torch.randn(rows, n, dtype=torch.float64) * 1.5).to(dtype)
    y = (0.6 * x.double() + torch.randn(rows, n, dtype=torch.float64)).to(dtype)
    w = torch.randn(rows, n, dtype=torch.float64).to(dtype)  # signed: the double-backward case
    h = torch.randn(rows, *bins, dtype=torch.float64).to(dtype)
    return x, y, w, h


def joint_params(x, y, bins, kernel):
    return (ops.params(x, bins[0], -4.0, 4.0, None, kernel),
            ops.params(y, bins[1], -5.0, 5.0, None, kernel))


@pytest.mark.parametrize("kernel", SMOOTH)
@pytest.mark.parametrize(
    "dtype,rtol,orders",
    [(torch.float64, 1e-11, ORDER_PAIRS), (torch.float32, 1e-4, ORDER_PAIRS),
     (torch.float16, 2e-3, [(0, 0), (1, 0), (0, 1)]),
     (torch.bfloat16, 1.6e-2, [(0, 0), (1, 0), (0, 1)])])
def test_joint_scatter_and_gather_equal_the_cpu(kernel, dtype, rtol, orders):
    bins = (24, 20)
    x, y, w, h = joint_case(dtype, bins)
    px, py = joint_params(x, y, bins, kernel)
    xc, yc, wc, hc, pxc, pyc = (t.cuda() for t in (x, y, w, h, px, py))
    for ox, oy in orders:
        for weight, weight_cuda in ((w, wc), (None, None)):
            close_to_cpu(ops.scatter([xc, yc], weight_cuda, torch.stack([pxc, pyc]), list(bins),
                                     [ox, oy], kernel),
                         ops.scatter([x, y], weight, torch.stack([px, py]), list(bins), [ox, oy],
                                     kernel), rtol)
        close_to_cpu(ops.gather([xc, yc], hc, torch.stack([pxc, pyc]), [ox, oy], kernel),
                     ops.gather([x, y], h, torch.stack([px, py]), [ox, oy], kernel), rtol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_joint_hard_kernel_equals_the_cpu_and_is_reproducible(dtype):
    bins = (16, 12)
    x, y, w, h = joint_case(dtype, bins)
    x[0, :3000] = 0.3  # half a row in one bin: a whole warp on one counter
    y[0, :3000] = -0.2
    px, py = joint_params(x, y, bins, "hard")
    xc, yc, pxc, pyc = x.cuda(), y.cuda(), px.cuda(), py.cuda()
    for weight in (None, w):
        wc = None if weight is None else weight.cuda()
        expected = ops.scatter([x, y], weight, torch.stack([px, py]), list(bins), [0, 0], "hard")
        runs = [ops.scatter([xc, yc], wc, torch.stack([pxc, pyc]), list(bins), [0, 0], "hard")
                for _ in range(2)]
        assert torch.equal(runs[0], runs[1])
        if weight is None:  # unit weights: exact counts
            assert torch.equal(runs[0].cpu(), expected)
        else:
            close_to_cpu(runs[0], expected, 1e-12 if dtype == torch.float64 else 1e-6)
    assert torch.equal(ops.gather([xc, yc], h.cuda(), torch.stack([pxc, pyc]), [0, 0],
                                  "hard").cpu(),
                       ops.gather([x, y], h, torch.stack([px, py]), [0, 0], "hard"))


def test_joint_unit_weight_hard_counts_are_exact():
    x = torch.rand(300_000, dtype=torch.float64)
    y = torch.rand(300_000, dtype=torch.float64)
    x[:100_000] = 0.5  # concentrated: many lanes of a warp in one bin
    px, py = joint_params(x, y, (16, 12), "hard")
    expected = ops.scatter([x, y], None, torch.stack([px, py]), [16, 12], [0, 0], "hard")
    actual = ops.scatter([x.cuda(), y.cuda()], None, torch.stack([px, py]).cuda(), [16, 12],
                         [0, 0], "hard")
    assert torch.equal(actual.cpu(), expected)


@pytest.mark.parametrize("kernel", ["logistic", "bspline"])
def test_joint_forward_and_backward_are_bitwise_reproducible(kernel):
    # Many pairs per bin, so float atomics would reorder the sums.
    x = torch.rand(1, 2_000_000, device="cuda")
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    w = torch.rand_like(x)
    g = torch.randn(1, 64, 64, device="cuda")

    def run():
        xr, yr, wr = (t.detach().requires_grad_() for t in (x, y, w))
        out = softhist_ext.histc2d(xr, yr, 64, 0.0, 1.0, None, kernel, wr, -1)
        out.backward(g)
        return out, xr.grad, yr.grad, wr.grad

    first, second = run(), run()
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_joint_rows_are_independent_histograms():
    x = torch.randn(3, 2, 4000, dtype=torch.float64)
    y = torch.randn(3, 2, 4000, dtype=torch.float64)
    w = torch.rand(3, 2, 4000, dtype=torch.float64)
    h = torch.randn(3, 2, 10, 9, dtype=torch.float64)
    px, py = joint_params(x, y, (10, 9), "gaussian")
    pc = torch.stack([px, py]).cuda()
    out = ops.scatter([x.cuda(), y.cuda()], w.cuda(), pc, [10, 9], [1, 0], "gaussian")
    grad = ops.gather([x.cuda(), y.cuda()], h.cuda(), pc, [0, 1], "gaussian")
    assert out.shape == (3, 2, 10, 9) and grad.shape == x.shape
    p = torch.stack([px, py])
    close_to_cpu(out, ops.scatter([x, y], w, p, [10, 9], [1, 0], "gaussian"), 1e-11)
    close_to_cpu(grad, ops.gather([x, y], h, p, [0, 1], "gaussian"), 1e-11)
    for i in range(3):
        for j in range(2):
            one = ops.scatter([x[i, j].cuda(), y[i, j].cuda()], w[i, j].cuda(), pc, [10, 9], [1, 0],
                              "gaussian")
            close_to_cpu(one, ops.scatter([x[i, j], y[i, j]], w[i, j], p, [10, 9], [1, 0],
                                          "gaussian"), 1e-11)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bins", [(100, 120), (3, 10_000)])  # several tiles; tiles inside a row
def test_joint_histogram_over_several_tiles_equals_the_cpu(dtype, bins):
    # 12,000 and 30,000 bins: over the 8,192 counters of a tile, and (float64)
    # a histogram row too large for the gather's shared memory.
    x, y, w, h = joint_case(dtype, bins, rows=2, n=20_000)
    rtol = 1e-11 if dtype == torch.float64 else 1e-4
    for kernel in ("logistic", "bspline", "hard"):
        px, py = joint_params(x, y, bins, kernel)
        xc, yc, pxc, pyc = x.cuda(), y.cuda(), px.cuda(), py.cuda()
        orders = (0, 0) if kernel == "hard" else (1, 0)
        p, pc = torch.stack([px, py]), torch.stack([pxc, pyc])
        close_to_cpu(ops.scatter([xc, yc], w.cuda(), pc, list(bins), list(orders), kernel),
                     ops.scatter([x, y], w, p, list(bins), list(orders), kernel), rtol)
        close_to_cpu(ops.gather([xc, yc], h.cuda(), pc, list(orders), kernel),
                     ops.gather([x, y], h, p, list(orders), kernel), rtol)


def test_joint_wide_windows_walked_in_slabs_equal_the_cpu():
    # kappa * width = 0.2: windows of ~200 x ~200 bins, far more edges than a warp has lanes.
    x, y, w, h = joint_case(torch.float64, (60, 50), rows=1, n=3000)
    px = ops.params(x, 60, -4.0, 4.0, 0.2 * 60 / 8.0, "logistic")
    py = ops.params(y, 50, -5.0, 5.0, 0.2 * 50 / 10.0, "logistic")
    pc = torch.stack([px, py]).cuda()
    close_to_cpu(ops.scatter([x.cuda(), y.cuda()], w.cuda(), pc, [60, 50], [0, 1], "logistic"),
                 ops.scatter([x, y], w, torch.stack([px, py]), [60, 50], [0, 1], "logistic"), 1e-11)
    close_to_cpu(ops.gather([x.cuda(), y.cuda()], h.cuda(), pc, [1, 0], "logistic"),
                 ops.gather([x, y], h, torch.stack([px, py]), [1, 0], "logistic"), 1e-11)


def test_joint_nonfinite_weights_give_the_cpus_nan_and_inf():
    x = torch.tensor([[0.1, 0.5, -0.7, 1.2]] * 3, dtype=torch.float64)
    y = torch.tensor([[-0.3, 0.4, 0.9, -1.1]] * 3, dtype=torch.float64)
    w = torch.tensor([[1.0, float("inf"), 1.0, 1.0],
                      [1.0, float("nan"), 1.0, 1.0],
                      [float("inf"), float("-inf"), 1.0, 1.0]], dtype=torch.float64)
    # 40 y bins: windows narrower than a row, so bins past them stay finite.
    for kernel, (bx, by) in itertools.product(("bspline", "hard"), ((8, 6), (8, 40))):
        px, py = joint_params(x, y, (bx, by), kernel)
        expected = ops.scatter([x, y], w, torch.stack([px, py]), [bx, by], [0, 0], kernel)
        actual = ops.scatter([x.cuda(), y.cuda()], w.cuda(), torch.stack([px, py]).cuda(),
                             [bx, by], [0, 0], kernel).cpu()
        torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


# Histograms over three axes (scatter / gather with three coordinates).

ORDER_TRIPLES = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (2, 0, 1), (0, 3, 2),
                 (3, 2, 0)]
RANGES_3D = ((-4.0, 4.0), (-5.0, 5.0), (-3.0, 3.0))


def triple_case(dtype, bins=(10, 9, 8), rows=2, n=3000):
    x = (torch.randn(rows, n, dtype=torch.float64) * 1.5).to(dtype)
    y = (0.6 * x.double() + torch.randn(rows, n, dtype=torch.float64)).to(dtype)
    z = (torch.rand(rows, n, dtype=torch.float64) * 7 - 3.5).to(dtype)  # some outside the range
    w = torch.randn(rows, n, dtype=torch.float64).to(dtype)  # signed: the double-backward case
    h = torch.randn(rows, *bins, dtype=torch.float64).to(dtype)
    return [x, y, z], w, h


def triple_params(coords, bins, kernel, kappas=(None, None, None), conserve_mass=False):
    """The (3, 4) params of the three axes, on the CPU."""
    return torch.stack([ops.params(c, b, lo, hi, k, kernel, conserve_mass)
                        for c, b, (lo, hi), k in zip(coords, bins, RANGES_3D, kappas)])


def cuda_all(ts):
    return [t.cuda() for t in ts]


@pytest.mark.parametrize("conserve_mass", [False, True])
@pytest.mark.parametrize("kernel", SMOOTH)
@pytest.mark.parametrize(
    "dtype,rtol,orders",
    [(torch.float64, 1e-11, ORDER_TRIPLES), (torch.float32, 1e-4, ORDER_TRIPLES),
     (torch.float16, 2e-3, [(0, 0, 0), (1, 0, 0), (0, 0, 1)]),
     (torch.bfloat16, 1.6e-2, [(0, 0, 0), (1, 0, 0), (0, 0, 1)])])
def test_3d_scatter_and_gather_equal_the_cpu(kernel, dtype, rtol, orders, conserve_mass):
    bins = [10, 9, 8]
    coords, w, h = triple_case(dtype, bins)
    p = triple_params(coords, bins, kernel, conserve_mass=conserve_mass)
    cc, wc, hc, pc = cuda_all(coords), w.cuda(), h.cuda(), p.cuda()
    for o in orders:
        for weight, weight_cuda in ((w, wc), (None, None)):
            close_to_cpu(ops.scatter(cc, weight_cuda, pc, bins, list(o), kernel),
                         ops.scatter(coords, weight, p, bins, list(o), kernel), rtol)
        close_to_cpu(ops.gather(cc, hc, pc, list(o), kernel),
                     ops.gather(coords, h, p, list(o), kernel), rtol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_3d_hard_kernel_equals_the_cpu_and_is_reproducible(dtype):
    bins = [8, 6, 5]
    coords, w, h = triple_case(dtype, bins)
    for c, v in zip(coords, (0.3, -0.2, 1.1)):
        c[0, :1500] = v  # half a row in one bin: whole warps on one counter
    p = triple_params(coords, bins, "hard")
    cc, pc = cuda_all(coords), p.cuda()
    for weight in (None, w):
        wc = None if weight is None else weight.cuda()
        expected = ops.scatter(coords, weight, p, bins, [0, 0, 0], "hard")
        runs = [ops.scatter(cc, wc, pc, bins, [0, 0, 0], "hard") for _ in range(2)]
        assert torch.equal(runs[0], runs[1])
        if weight is None:  # unit weights: exact counts
            assert torch.equal(runs[0].cpu(), expected)
        else:
            close_to_cpu(runs[0], expected, 1e-12 if dtype == torch.float64 else 1e-6)
    assert torch.equal(ops.gather(cc, h.cuda(), pc, [0, 0, 0], "hard").cpu(),
                       ops.gather(coords, h, p, [0, 0, 0], "hard"))


def test_3d_hard_kernel_equals_torch_histogramdd():
    # torch.histogramdd has no CUDA kernel: compared with it on the CPU, in
    # float64, where a sample within rounding of an edge has probability ~0.
    bins = [7, 6, 5]
    coords, w, _ = triple_case(torch.float64, bins, rows=1, n=50_000)
    p = triple_params(coords, bins, "hard")
    samples = torch.stack([c[0] for c in coords], dim=1)  # (N, 3)
    edges = [v for r in RANGES_3D for v in r]
    for weight in (None, w):
        expected = torch.histogramdd(samples, bins, range=edges,
                                     weight=None if weight is None else weight[0]).hist
        actual = ops.scatter(cuda_all(coords), None if weight is None else weight.cuda(),
                             p.cuda(), bins, [0, 0, 0], "hard")[0].cpu()
        if weight is None:
            assert torch.equal(actual, expected)
        else:
            close_to_cpu(actual, expected, 1e-12)


def test_3d_rows_are_independent_histograms():
    coords = [torch.randn(3, 2, 2000, dtype=torch.float64) for _ in range(3)]
    w = torch.rand(3, 2, 2000, dtype=torch.float64)
    h = torch.randn(3, 2, 6, 5, 4, dtype=torch.float64)
    bins = [6, 5, 4]
    p = triple_params(coords, bins, "gaussian")
    cc, pc = cuda_all(coords), p.cuda()
    out = ops.scatter(cc, w.cuda(), pc, bins, [1, 0, 2], "gaussian")
    grad = ops.gather(cc, h.cuda(), pc, [0, 1, 0], "gaussian")
    assert out.shape == (3, 2, 6, 5, 4) and grad.shape == coords[0].shape
    close_to_cpu(out, ops.scatter(coords, w, p, bins, [1, 0, 2], "gaussian"), 1e-11)
    close_to_cpu(grad, ops.gather(coords, h, p, [0, 1, 0], "gaussian"), 1e-11)
    for i in range(3):
        for j in range(2):
            one = ops.scatter([c[i, j].cuda() for c in coords], w[i, j].cuda(), pc, bins,
                              [1, 0, 2], "gaussian")
            close_to_cpu(one, out[i, j].cpu(), 1e-11)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bins", [(30, 20, 25), (2, 3, 10_000)])  # boxes across x; across z
def test_3d_histogram_over_several_tiles_equals_the_cpu(dtype, bins):
    # 15,000 and 60,000 bins: over the 8,192 counters of a box, and (float64)
    # a histogram row too large for the gather's shared memory.
    bins = list(bins)
    coords, w, h = triple_case(dtype, bins, rows=2, n=8000)
    rtol = 1e-11 if dtype == torch.float64 else 1e-4
    for kernel in ("logistic", "bspline", "hard"):
        p = triple_params(coords, bins, kernel)
        cc, pc = cuda_all(coords), p.cuda()
        orders = [0, 0, 0] if kernel == "hard" else [1, 0, 2]
        close_to_cpu(ops.scatter(cc, w.cuda(), pc, bins, orders, kernel),
                     ops.scatter(coords, w, p, bins, orders, kernel), rtol)
        close_to_cpu(ops.gather(cc, h.cuda(), pc, orders, kernel),
                     ops.gather(coords, h, p, orders, kernel), rtol)


def test_3d_wide_windows_equal_the_cpu():
    # kappa * width = 0.3 on x: windows wider than the whole axis (clipped to it).
    bins = [12, 10, 8]
    coords, w, h = triple_case(torch.float64, bins, rows=1, n=2000)
    p = triple_params(coords, bins, "logistic", kappas=(0.3 * 12 / 8.0, None, 2.0))
    cc, pc = cuda_all(coords), p.cuda()
    close_to_cpu(ops.scatter(cc, w.cuda(), pc, bins, [0, 1, 0], "logistic"),
                 ops.scatter(coords, w, p, bins, [0, 1, 0], "logistic"), 1e-11)
    close_to_cpu(ops.gather(cc, h.cuda(), pc, [1, 0, 0], "logistic"),
                 ops.gather(coords, h, p, [1, 0, 0], "logistic"), 1e-11)


def test_3d_nonfinite_weights_give_the_cpus_nan_and_inf():
    x = torch.tensor([[0.1, 0.5, -0.7, 1.2]] * 3, dtype=torch.float64)
    y = torch.tensor([[-0.3, 0.4, 0.9, -1.1]] * 3, dtype=torch.float64)
    z = torch.tensor([[0.2, -0.6, 1.4, 0.0]] * 3, dtype=torch.float64)
    w = torch.tensor([[1.0, float("inf"), 1.0, 1.0],
                      [1.0, float("nan"), 1.0, 1.0],
                      [float("inf"), float("-inf"), 1.0, 1.0]], dtype=torch.float64)
    # 40 z bins: windows narrower than a row, so bins past them stay finite.
    for kernel, bins in itertools.product(("bspline", "hard"), ([8, 6, 5], [8, 6, 40])):
        p = triple_params([x, y, z], bins, kernel)
        expected = ops.scatter([x, y, z], w, p, bins, [0, 0, 0], kernel)
        actual = ops.scatter(cuda_all([x, y, z]), w.cuda(), p.cuda(), bins, [0, 0, 0],
                             kernel).cpu()
        torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("kernel", ["logistic", "bspline", "hard"])
def test_3d_scatter_and_gather_are_bitwise_reproducible(kernel):
    # Many samples per bin, so float atomics would reorder the sums.
    coords = [torch.rand(1, 500_000, device="cuda") for _ in range(3)]
    w = torch.rand_like(coords[0])
    h = torch.randn(1, 16, 16, 16, device="cuda")
    p = torch.stack([ops.params(c, 16, 0.0, 1.0, None, kernel) for c in coords])
    orders = [0, 0, 0] if kernel == "hard" else [1, 0, 0]
    runs = [(ops.scatter(coords, w, p, [16, 16, 16], [0, 0, 0], kernel),
             ops.scatter(coords, None, p, [16, 16, 16], orders, kernel),
             ops.gather(coords, h, p, orders, kernel)) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*runs))


# Streams (issue #7): concurrent calls from several CUDA streams give correct results.

def histc_forward_backward(x, g, lo, hi):
    xr = x.detach().requires_grad_()
    out = softhist_ext.histc(xr, 64, lo, hi)
    out.backward(g)
    return out, xr.grad


@pytest.mark.parametrize("lo,hi", [(-4.0, 4.0), (0.0, 0.0)])  # (0, 0): range from the data
def test_histc_on_concurrent_streams_equals_the_cpu(lo, hi):
    xs = [torch.randn(1_000_000, device="cuda") * (1 + k) + k for k in range(4)]
    gs = [torch.randn(64, device="cuda") for _ in xs]
    expected = [histc_forward_backward(x.cpu(), g.cpu(), lo, hi) for x, g in zip(xs, gs)]
    on_default = [histc_forward_backward(x, g, lo, hi) for x, g in zip(xs, gs)]
    streams = [torch.cuda.Stream() for _ in xs]
    main = torch.cuda.current_stream()
    results = []
    for x, g, stream in zip(xs, gs, streams):  # queued back to back, so they overlap
        stream.wait_stream(main)
        with torch.cuda.stream(stream):
            results.append(histc_forward_backward(x, g, lo, hi))
    for stream in streams:
        main.wait_stream(stream)
    torch.cuda.synchronize()
    for (out, grad), (out_d, grad_d), (out_cpu, grad_cpu) in zip(results, on_default, expected):
        assert torch.equal(out, out_d) and torch.equal(grad, grad_d)  # the stream changes nothing
        close_to_cpu(out, out_cpu, 1e-5)
        close_to_cpu(grad, grad_cpu, 1e-5)


def test_histc_from_threads_each_on_its_own_stream_equals_the_cpu():
    from concurrent.futures import ThreadPoolExecutor

    xs = [torch.randn(500_000, device="cuda") * 0.5 * (1 + k) for k in range(6)]
    gs = [torch.randn(64, device="cuda") for _ in xs]
    torch.cuda.synchronize()

    def work(k):
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):
            out, grad = histc_forward_backward(xs[k], gs[k], -4.0, 4.0)
        stream.synchronize()
        return out, grad

    with ThreadPoolExecutor(len(xs)) as pool:
        results = list(pool.map(work, range(len(xs))))
    for (out, grad), x, g in zip(results, xs, gs):
        out_cpu, grad_cpu = histc_forward_backward(x.cpu(), g.cpu(), -4.0, 4.0)
        close_to_cpu(out, out_cpu, 1e-5)
        close_to_cpu(grad, grad_cpu, 1e-5)


def _uneven_edges(bins, gen):
    widths = torch.rand(bins, generator=gen, dtype=torch.float64) * 10 + 0.1  # 100x apart
    return -4.0 + 8.0 * torch.cat([torch.zeros(1, dtype=torch.float64), widths.cumsum(0)]) / widths.sum()


@pytest.mark.parametrize("axes", [2, 3])
@pytest.mark.parametrize("kernel", SMOOTH)
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-11), (torch.float32, 1e-5)])
@pytest.mark.parametrize("explicit", [True, False])
def test_joint_explicit_edges_and_axes_at_edges_equal_the_cpu(axes, kernel, dtype, rtol, explicit):
    # Uneven edges of 12, 7 and 9 bins per axis (params rows padded to the
    # longest), or even ones over [-4, 4]; the last axis's ends open; the
    # orders and axes at their edges that the gradients use.
    gen = torch.Generator().manual_seed(axes)
    bins = [12, 7, 9][:axes]
    rows = []
    for a, b in enumerate(bins):
        head = torch.tensor([-4.0, 4.0, [6.0, 3.0, 9.0][a], float(a == axes - 1)], dtype=torch.float64)
        edges = torch.cat([_uneven_edges(b, gen), torch.zeros(max(bins) - b, dtype=torch.float64)])
        rows.append(torch.cat([head, edges]) if explicit else head)
    p = torch.stack(rows)
    x = [(torch.randn(2, 20_000, generator=gen, dtype=torch.float64) * 1.5).to(dtype) for _ in bins]
    w = torch.randn_like(x[0])
    pc, xc = p.cuda(), [c.cuda() for c in x]
    last = axes - 1
    for orders, at in [([0] * axes, []), ([1] + [0] * last, []), ([0] * last + [2], []),
                       ([1] + [0] * last, [0]), ([0] * last + [2], [last]), ([1] * axes, list(range(axes)))]:
        h = torch.randn(2, *[b + (a in at) for a, b in enumerate(bins)], dtype=dtype)
        close_to_cpu(ops.scatter(xc, w.cuda(), pc, bins, orders, kernel, at),
                     ops.scatter(x, w, p, bins, orders, kernel, at), rtol)
        close_to_cpu(ops.gather(xc, h.cuda(), pc, orders, kernel, at),
                     ops.gather(x, h, p, orders, kernel, at), rtol)


def test_joint_explicit_edges_histogramdd_and_its_gradients_equal_the_cpu():
    # The gradients for the samples, the weights and the edges.
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50_000, 2, generator=gen, dtype=torch.float64) * 1.5
    w = torch.rand(50_000, generator=gen, dtype=torch.float64)
    edges = [_uneven_edges(10, gen), _uneven_edges(6, gen)]
    results = []
    for device in ["cpu", "cuda"]:
        xr, wr = x.to(device).requires_grad_(), w.to(device).requires_grad_()
        er = [e.to(device).requires_grad_() for e in edges]
        hist, _ = softhist_ext.histogramdd(xr, er, weight=wr, kappa=[6.0, 3.0], kernel="gaussian")
        results.append((hist, *torch.autograd.grad(hist.pow(2).sum(), [xr, wr, *er])))
    for cuda, cpu in zip(results[1], results[0]):
        close_to_cpu(cuda, cpu, 1e-10)


def test_straight_through_refuses_a_range_beyond_the_samples_type():
    # The hard count's range check reads params on the host, the CPU's scatter
    # does: on CUDA, every float16 sample had landed in the last bin.
    h = torch.tensor([0.0, 100.0, -60000.0], dtype=torch.float16, device="cuda")
    with pytest.raises(RuntimeError, match="beyond Half's finite values"):
        softhist_ext.histc(h, 4, -1e5, 1e5, straight_through=True)
    lo, hi = torch.tensor(-1e5, device="cuda"), torch.tensor(1e5, device="cuda")
    with pytest.raises(RuntimeError, match="beyond Half's finite values"):
        softhist_ext.histc(h, 4, lo, hi, straight_through=True)
    wide = h.float()
    assert torch.equal(softhist_ext.histc(wide, 4, -1e5, 1e5, straight_through=True).cpu(),
                       torch.histc(wide.cpu(), 4, -1e5, 1e5))
