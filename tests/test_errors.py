"""Bad input gets a clear error naming the argument; never a crash."""

import math

import pytest
import torch

import softhist_ext

x = torch.randn(10)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(bins=0), "bins must be between 1"),
        (dict(bins=-3), "bins must be between 1"),
        (dict(min=2.0, max=1.0), "min must not exceed max"),
        (dict(min=-math.inf, max=1.0), "min and max must be finite"),
        (dict(min=0.0, max=math.nan), "min and max must be finite"),
        (dict(kappa=0.0), "kappa must be a positive finite number"),
        (dict(kappa=-1.0), "kappa must be a positive finite number"),
        (dict(kappa=math.nan), "kappa must be a positive finite number"),
        (dict(kappa=math.inf), "kappa must be a positive finite number"),
        (dict(bins=10, min=1.0, max=1.0 + 2.3e-16), "too narrow"),
        (dict(bins=10, min=-7e-310, max=-6e-310), "too narrow"),  # subnormal bins
        (dict(bins=4, min=-1.7e308, max=1.7e308), "wider than a double can hold"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(RuntimeError, match=match):
        softhist_ext.histc(x, **kwargs)


def test_data_range_too_narrow_is_widened_the_same_on_every_device(device):
    # An explicit range this narrow raises (above); one taken from the data is
    # widened instead, as torch.histc counts such data, on every device alike
    # (a CUDA device could only raise after a host sync).
    data = torch.tensor([1.0, 1.0 + 2.3e-16], dtype=torch.float64)
    ops = torch.ops.softhist
    lo, hi, kappa, open_ends = ops.params(data.to(device), 10, 0.0, 0.0, None, "logistic").tolist()
    width = (hi - lo) / 10
    assert lo < 1.0 < hi and lo + width > lo and hi - width < hi
    assert kappa == pytest.approx(4.0 / width) and open_ends == 0.0
    assert torch.equal(ops.params(data, 10, 0.0, 0.0, None, "logistic"),
                       ops.params(data.to(device), 10, 0.0, 0.0, None, "logistic").cpu())
    out = softhist_ext.histc(data.to(device), 10, kernel="hard")
    assert out.sum().item() == 2.0


def test_data_range_of_subnormal_bins_is_widened(device):
    # Bins of subnormal width would make 1 / width and the default kappa
    # infinite, and every mass 0: such a range from the data is widened too.
    data = torch.tensor([-7e-310, -6.5e-310, -6e-310], dtype=torch.float64, device=device)
    lo, hi, kappa, _ = torch.ops.softhist.params(data, 10, 0.0, 0.0, None, "logistic").tolist()
    assert math.isfinite(kappa) and lo < -7e-310 and hi > -6e-310
    assert softhist_ext.histc(data, 10).sum().item() == pytest.approx(3.0, rel=1e-6)


@pytest.mark.parametrize(
    "tensor,match",
    [
        (torch.arange(10), "dtype Long.*convert it with input.float()"),
        (torch.arange(10, dtype=torch.int32), "dtype Int.*input.float()"),
        (torch.arange(10, dtype=torch.uint8), "dtype Byte.*input.float()"),
        (torch.ones(10, dtype=torch.bool), "bool tensor; convert it with input.float()"),
        (torch.randn(10, dtype=torch.complex64), "complex.*input.real"),
    ],
)
def test_bad_input_dtypes(tensor, match):
    with pytest.raises(RuntimeError, match=match):
        softhist_ext.histc(tensor, 10, -1.0, 1.0)


def test_device_without_kernels_is_named():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA kernels to run")
    # Dispatch as a tensor on a backend with no kernel of ours would.
    keys = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)
    with pytest.raises(RuntimeError, match="params got a tensor on a device softhist_ext has no kernels for.*show_config.*cpu()"):
        torch.ops.softhist.params.default.redispatch(keys, x, 10, -1.0, 1.0, None, "logistic")


def test_internal_ops_check_their_arguments():
    ops = torch.ops.softhist
    p = ops.params(x, 5, -1.0, 1.0, None, "logistic")
    with pytest.raises(RuntimeError, match="params must be the float64 .axes, 4. tensor"):
        ops.scatter([x], None, p.float()[None], [5], [0], "logistic")
    with pytest.raises(RuntimeError, match="weight must have the input's shape"):
        ops.scatter([x], torch.ones(3), p[None], [5], [0], "logistic")
    with pytest.raises(RuntimeError, match="weight must have the input's dtype, got weight Double and input Float.*weight.to"):
        ops.scatter([x], torch.ones(10, dtype=torch.float64), p[None], [5], [0], "logistic")
    with pytest.raises(RuntimeError, match="derivative order 4 is not implemented"):
        ops.gather([x], torch.ones(5), p[None], [4], "logistic")
    with pytest.raises(RuntimeError, match="hist must have the input's dtype"):
        ops.gather([x], torch.ones(5, dtype=torch.float64), p[None], [1], "logistic")
    with pytest.raises(RuntimeError, match=r"hist must have .*shape input.shape\[:-1\] \+ bins"):
        ops.gather([x.reshape(2, 5)], torch.ones(3, 5), p[None], [1], "logistic")
    with pytest.raises(RuntimeError, match="hard kernel.*straight_through=True with a smooth kernel"):
        ops.gather([x], torch.ones(5), p[None], [1], "hard")
    # Rows made from tensors under torch.compile meet only the op's checks.
    for bad, match in (([-1.0, 1.0, -2.0, 0.0], "kappa must be a positive finite"),
                       ([-1.0, 1.0, math.nan, 0.0], "kappa must be a positive finite"),
                       ([1.0, -1.0, -2.0, 0.0], "range must be finite with min < max"),
                       ([-1.0, math.inf, 2.0, 0.0], "range must be finite with min < max"),
                       ([-1.0, 1.0, 1e14, 0.0], "kappa \\* bin width")):
        row = torch.tensor([bad], dtype=torch.float64)
        with pytest.raises(RuntimeError, match=match):
            ops.scatter([x], None, row, [5], [0], "logistic")
        with pytest.raises(RuntimeError, match=match):
            ops.gather([x], torch.ones(5), row, [1], "logistic")
    for bad, match in (([1.0, -1.0, 2.0, 0.0], "range must be finite with min < max"),
                       ([-1e308, 1e308, 2.0, 0.0], "wider than a double can hold")):
        with pytest.raises(RuntimeError, match=match):  # (the hard kernel's rows too)
            ops.scatter([x], None, torch.tensor([bad], dtype=torch.float64), [5], [0], "hard")
    # gather_at_places with places scatter_places never keeps (even bins)
    with pytest.raises(RuntimeError, match="pieces must be scatter_places's.*keep no places"):
        ops.gather_at_places(x.double(), torch.ones(7, dtype=torch.float64),
                             torch.tensor([[-2.0, 2.0, 2.5, 0.0]], dtype=torch.float64), 0,
                             "triangular", torch.zeros(10, dtype=torch.int32),
                             torch.zeros(10, dtype=torch.float64), torch.tensor(True))


def test_the_hard_kernel_refuses_a_range_beyond_the_samples_type_and_a_kappa(device):
    # It bins in the samples' type, as torch.histc (which raises too): a range
    # past float16's 65504 had counted every sample, +inf too, in an end bin.
    h = torch.tensor([0.0, 100.0, 60000.0, -60000.0], dtype=torch.float16)
    for lo, hi in [(-1e5, 1e5), (0.0, 65536.0)]:
        with pytest.raises(RuntimeError, match="beyond Half's finite values.*input.float"):
            softhist_ext.histc(h.to(device), 4, lo, hi, kernel="hard")
        with pytest.raises(RuntimeError, match="beyond Half's finite values"):
            softhist_ext.histc(h, 4, lo, hi, straight_through=True)  # (CPU: params on the host)
    with pytest.raises(RuntimeError, match="beyond Float's finite values"):
        softhist_ext.histc(torch.tensor([0.0, 1e38, math.inf]), 4, 0.0, 1e39, kernel="hard")
    wide = h.float()
    assert torch.equal(softhist_ext.histc(wide, 4, -1e5, 1e5, kernel="hard"), torch.histc(wide, 4, -1e5, 1e5))
    # Exact counts have no kernel scale: a kappa, or a kernel bincount of
    # integers never uses, had been ignored without a word.
    v, edges = torch.rand(10), torch.linspace(0.0, 1.0, 5)
    calls = [
        lambda: softhist_ext.histc(v, 4, 0.0, 1.0, kappa=5.0, kernel="hard"),
        lambda: softhist_ext.histc2d(v, v, 4, 0.0, 1.0, kappa=5.0, kernel="hard"),
        lambda: softhist_ext.histogram(v, 4, (0.0, 1.0), kappa=5.0, kernel="hard"),
        lambda: softhist_ext.histogram(v, edges, kappa=5.0, kernel="hard"),
        lambda: softhist_ext.histogramdd(v[:, None], 4, kappa=5.0, kernel="hard"),
        lambda: softhist_ext.histogramdd(v[:, None], [edges], kappa=5.0, kernel="hard"),
    ]
    for call in calls:
        with pytest.raises((RuntimeError, ValueError), match="hard kernel takes no kappa"):
            call()
    counts = torch.tensor([0, 2, 2, 5])
    with pytest.raises(ValueError, match="integer input counts exactly, and takes no kappa"):
        softhist_ext.bincount(counts, kappa=2.0)
    with pytest.raises(ValueError, match="bincount's kernel must be one of"):
        softhist_ext.bincount(counts, kernel="cosine")
    assert torch.equal(softhist_ext.bincount(counts, kernel="hard"), torch.bincount(counts))
    pts = torch.rand(10, 2)
    torch.testing.assert_close(softhist_ext.histogramdd(pts, [edges, edges], kappa=[None, None], kernel="hard").hist,
                               torch.histogramdd(pts, [edges, edges]).hist)


def test_constant_arguments_refuse_tensors_that_require_grad():
    # The losses' and image functions' range and kappa, and SoftHistogram's
    # fixed bins, are constants for autograd: a Parameter there had its
    # gradient dropped without a word. NumPy scalars and 0-d tensors that need
    # no gradient are numbers, as elsewhere (mutual_information had raised an
    # IndexError on them).
    t = torch.tensor(0.0, requires_grad=True)
    img, other = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    L, F = softhist_ext.losses, softhist_ext.functional
    calls = {
        "mutual_information's min": lambda: softhist_ext.mutual_information(img, other, min=t, max=1.0),
        "mutual_information's kappa": lambda: softhist_ext.mutual_information(img, other, 8, 0.0, 1.0, t + 9),
        "MutualInformationLoss's max": lambda: L.MutualInformationLoss(8, 0.0, t + 1),
        "histogram_distance's min": lambda: L.histogram_distance(img, other, "emd", 8, t, 1.0),
        "histogram_distance's kappa": lambda: L.histogram_distance(img, other, "emd", 8, 0.0, 1.0, t + 9),
        "HistogramLoss's kappa": lambda: L.HistogramLoss("emd", 8, 0.0, 1.0, t + 9),
        "equalize's min": lambda: F.equalize(img, 8, t, 1.0),
        "equalize_clahe's kappa": lambda: F.equalize_clahe(img, bins=8, min=0.0, max=1.0, kappa=t + 9),
        "match_histograms's max": lambda: F.match_histograms(img, other, 8, 0.0, t + 1),
        "SoftHistogram's min": lambda: softhist_ext.nn.SoftHistogram(8, t, 1.0),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match=f"{name} must be .*constant"):
            call()
    import numpy as np

    expected = softhist_ext.mutual_information(img, other, 8, 0.0, 1.0)
    for lo, hi in [(np.float32(0), np.float32(1)), (np.int64(0), np.int64(1)), (torch.tensor(0.0), torch.tensor(1.0))]:
        torch.testing.assert_close(softhist_ext.mutual_information(img, other, 8, lo, hi), expected)
