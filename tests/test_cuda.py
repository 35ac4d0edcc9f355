"""CUDA-only properties. The shared tests already run on "cuda" through the
`device` fixture; these pin down what only the CUDA kernels promise:
bitwise reproducibility, the input's device, CUDA-graph capture, and the CPU's
results for every kernel, order and dtype (including the paths for many bins)."""

import pytest
import torch

import softhist_ext

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

ops = torch.ops.softhist
SMOOTH = ["logistic", "gaussian", "triangular", "bspline"]


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
    runs = [ops.scatter(x, w, p, 100, 1, "gaussian") for _ in range(3)]
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


def test_data_range_too_narrow_is_widened_instead_of_raising():
    # The CPU raises (test_errors); raising here would need a host sync.
    x = torch.tensor([1.0, 1.0 + 2.3e-16], dtype=torch.float64)
    lo, hi, kappa = ops.params(x.cuda(), 10, 0.0, 0.0, None, "logistic").tolist()
    width = (hi - lo) / 10
    assert lo < 1.0 < hi and lo + width > lo and hi - width < hi and 0 < kappa < float("inf")


@pytest.mark.parametrize("kernel", SMOOTH)
@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("bins", [40, 20_000])  # 20,000: bins tiled, histogram not in shared memory
def test_float64_scatter_and_gather_equal_the_cpu(kernel, order, bins):
    x = torch.randn(3, 30_000, dtype=torch.float64) * 1.5
    w = torch.randn_like(x)
    h = torch.randn(3, bins, dtype=torch.float64)
    p = ops.params(x, bins, -4.0, 4.0, None, kernel)
    pc = p.cuda()
    close_to_cpu(ops.scatter(x.cuda(), w.cuda(), pc, bins, order, kernel),
                 ops.scatter(x, w, p, bins, order, kernel), 1e-11)
    close_to_cpu(ops.scatter(x.cuda(), None, pc, bins, order, kernel),
                 ops.scatter(x, None, p, bins, order, kernel), 1e-11)
    close_to_cpu(ops.gather(x.cuda(), h.cuda(), pc, order, kernel),
                 ops.gather(x, h, p, order, kernel), 1e-11)


def test_hard_kernel_equals_the_cpu_and_is_reproducible():
    x = torch.randn(2, 50_000, dtype=torch.float64)
    w = torch.rand_like(x)
    h = torch.randn(2, 30, dtype=torch.float64)
    p = ops.params(x, 30, -2.0, 2.0, None, "hard")
    for weight in (None, w):
        expected = ops.scatter(x, weight, p, 30, 0, "hard")
        wc = None if weight is None else w.cuda()
        runs = [ops.scatter(x.cuda(), wc, p.cuda(), 30, 0, "hard") for _ in range(3)]
        assert all(torch.equal(r, runs[0]) for r in runs[1:])
        close_to_cpu(runs[0], expected, 1e-13)
    assert torch.equal(ops.gather(x.cuda(), h.cuda(), p.cuda(), 0, "hard").cpu(),
                       ops.gather(x, h, p, 0, "hard"))


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
    close_to_cpu(ops.scatter(x.cuda(), w.cuda(), pc, 64, 0, kernel),
                 ops.scatter(x, w, p, 64, 0, kernel), rtol)
    close_to_cpu(ops.gather(x.cuda(), h.cuda(), pc, 1, kernel),
                 ops.gather(x, h, p, 1, kernel), rtol)


def test_every_sample_in_one_bin_equals_the_cpu():
    # Whole warps add to the same bins (the contended case); their windows
    # start at one or two different edges.
    x = 0.3 + torch.rand(1_000_000, dtype=torch.float64) * 0.03
    p = ops.params(x, 256, -4.0, 4.0, 8 * 256 / 8.0, "logistic")
    expected = ops.scatter(x, None, p, 256, 0, "logistic")
    runs = [ops.scatter(x.cuda(), None, p.cuda(), 256, 0, "logistic") for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    close_to_cpu(runs[0], expected, 1e-11)


def test_nonfinite_weights_give_the_cpus_nan_and_inf():
    x = torch.tensor([[0.1, 0.5, -0.7, 1.2]] * 3, dtype=torch.float64)
    w = torch.tensor([[1.0, float("inf"), 1.0, 1.0],
                      [1.0, float("nan"), 1.0, 1.0],
                      [float("inf"), float("-inf"), 1.0, 1.0]], dtype=torch.float64)
    p = ops.params(x, 8, -2.0, 2.0, 3.0, "bspline")
    expected = ops.scatter(x, w, p, 8, 0, "bspline")
    actual = ops.scatter(x.cuda(), w.cuda(), p.cuda(), 8, 0, "bspline").cpu()
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12, equal_nan=True)
