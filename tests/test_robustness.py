"""Threads get the sequential results bit for bit; bad arguments of every kind
raise an exception that names the argument, never crash the process."""

import concurrent.futures
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import softhist_ext

KERNELS = list(softhist_ext.KERNELS)


def histc_call(i):
    """Forward and backward of one histc call, its inputs fixed by i."""
    g = torch.Generator().manual_seed(i)
    dtype = torch.float64 if i % 2 else torch.float32
    x = (torch.randn(3, 4000, generator=g, dtype=dtype) * 2).requires_grad_(True)
    w = torch.rand(3, 4000, generator=g, dtype=dtype).requires_grad_(True) if i % 3 else None
    out = softhist_ext.histc(x, 64 + i, -4.0, 4.0, kernel=KERNELS[i % 4], weight=w, dim=-1 if i % 5 else None)
    grads = torch.autograd.grad(out.pow(2).sum(), [x] + ([w] if w is not None else []))
    return [out.detach()] + list(grads)


def test_threads_give_the_sequential_results():
    calls = range(8 * 20)
    sequential = [histc_call(i) for i in calls]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(histc_call, calls))
    for i, (a, b) in enumerate(zip(sequential, threaded)):
        assert len(a) == len(b)
        assert all(torch.equal(u, v) for u, v in zip(a, b)), f"call {i}"


def test_meta_tensors_go_through_the_fake_kernels():
    x = torch.empty(5, 100, device="meta")
    out = softhist_ext.histc(x, 16, -1.0, 1.0, dim=-1)
    assert out.device.type == "meta" and out.shape == (5, 16)
    # min == max takes the range from the data; the fake kernel has no data
    # and only gives the shape.
    assert softhist_ext.histc(x, 16).shape == (16,)
    joint = softhist_ext.histc2d(x, x, (8, 4), -1.0, 1.0)
    assert joint.device.type == "meta" and joint.shape == (8, 4)
    # explicit edges, whose values can't be checked on meta
    layer = softhist_ext.nn.SoftHistogram(8, 0.0, 1.0, learnable=True, dim=-1).to("meta")
    assert layer(x).device.type == "meta" and layer(x).shape == (5, 8)
    edges = torch.empty(9, device="meta")
    assert softhist_ext.histogram(x[0], edges).hist.shape == (8,)


# Fuzzing: each case is (name, call, regex the message must match: it names
# the offending argument). The calls run in a child process, so a crash is a
# failed test rather than a dead pytest.
x = torch.randn(10)
x2 = torch.randn(2, 5)
ops = torch.ops.softhist


def fuzz_cases():
    p = ops.params(x, 5, -1.0, 1.0, None, "logistic")
    p2 = ops.params(x2, 5, -1.0, 1.0, None, "logistic")
    h = softhist_ext.histc
    h2 = softhist_ext.histc2d
    bc = softhist_ext.bincount
    mi = softhist_ext.mutual_information
    MILoss = softhist_ext.losses.MutualInformationLoss
    Hist = softhist_ext.nn.SoftHistogram
    y = torch.randn(10)
    return {
        # input
        "input str": (lambda: h("abc", 4, 0.0, 1.0), "input"),
        "input None": (lambda: h(None, 4, 0.0, 1.0), "input"),
        "input list": (lambda: h([0.1, 0.2], 4, 0.0, 1.0), "input"),
        "input long": (lambda: h(torch.arange(10), 4, 0.0, 1.0), "input"),
        "input bool": (lambda: h(torch.ones(3, dtype=torch.bool), 4, 0.0, 1.0), "input"),
        "input complex": (lambda: h(torch.randn(3, dtype=torch.complex64), 4, 0.0, 1.0), "input"),
        "input ndarray": (lambda: h(np.ones(3), 4, 0.0, 1.0), "input must be a Tensor, got ndarray"),
        "input float": (lambda: h(0.5, 4, 0.0, 1.0), "input must be a Tensor, got float"),
        # bins
        "bins str": (lambda: h(x, "4", 0.0, 1.0), "bins"),
        "bins None": (lambda: h(x, None, 0.0, 1.0), "bins"),
        "bins float": (lambda: h(x, 4.0, 0.0, 1.0), "bins"),
        "bins 4.5": (lambda: h(x, 4.5, 0.0, 1.0), "bins must be an int, got float"),
        "bins bool": (lambda: h(x, True, 0.0, 1.0), "bins must be an int, got bool"),
        "bins float tensor": (lambda: h(x, torch.tensor(4.0), 0.0, 1.0), "bins must be an int, got a 0-d float32 Tensor"),
        "bins 0": (lambda: h(x, 0, 0.0, 1.0), "bins"),
        "bins -1": (lambda: h(x, -1, 0.0, 1.0), "bins"),
        "bins 2^31": (lambda: h(x, 2**31, 0.0, 1.0), "bins"),
        "bins 2^63": (lambda: h(x, 2**63, 0.0, 1.0), "bins must be an int, got 9223372036854775808, outside the int64"),
        # range
        "min str": (lambda: h(x, 4, "0", 1.0), "min"),
        "min None": (lambda: h(x, 4, None, 1.0), "min"),
        "max list": (lambda: h(x, 4, 0.0, [1.0]), "max"),
        "min bool": (lambda: h(x, 4, False, 1.0), "min must be a number or a 0-d tensor, got bool"),
        "max complex": (lambda: h(x, 4, 0.0, 1j), "max must be a number or a 0-d tensor, got complex"),
        "min 1-d tensor": (lambda: h(x, 4, torch.zeros(2), 1.0), "min must be a number or a 0-d tensor, got a 1-d float32 Tensor"),
        "min > max": (lambda: h(x, 4, 2.0, 1.0), "min must not exceed max"),
        "min nan": (lambda: h(x, 4, math.nan, 1.0), "min and max must be finite"),
        "max inf": (lambda: h(x, 4, 0.0, math.inf), "min and max must be finite"),
        "min -inf max inf": (lambda: h(x, 4, -math.inf, math.inf), "min and max must be finite"),
        # kappa and kernel
        "kappa str": (lambda: h(x, 4, 0.0, 1.0, "1"), "kappa"),
        "kappa list": (lambda: h(x, 4, 0.0, 1.0, [1.0]), "kappa must be a number, a 0-d tensor or None, got list"),
        "kappa nan": (lambda: h(x, 4, 0.0, 1.0, math.nan), "kappa"),
        "kappa inf": (lambda: h(x, 4, 0.0, 1.0, math.inf), "kappa"),
        "kappa 0": (lambda: h(x, 4, 0.0, 1.0, 0.0), "kappa"),
        "kappa negative": (lambda: h(x, 4, 0.0, 1.0, -2.0), "kappa"),
        "kernel None": (lambda: h(x, 4, 0.0, 1.0, kernel=None), "kernel"),
        "kernel unknown": (lambda: h(x, 4, 0.0, 1.0, kernel="cosine"), "kernel"),
        "kernel case": (lambda: h(x, 4, 0.0, 1.0, kernel="Logistic"), "kernel"),
        "kernel empty": (lambda: h(x, 4, 0.0, 1.0, kernel=""), "kernel"),
        "kernel int": (lambda: h(x, 4, 0.0, 1.0, kernel=3), "kernel must be a str, got int"),
        # weight
        "weight list": (lambda: h(x, 4, 0.0, 1.0, weight=[1.0] * 10), "weight"),
        "weight shape": (lambda: h(x, 4, 0.0, 1.0, weight=torch.ones(9)), "weight"),
        "weight transposed": (lambda: h(x2, 4, 0.0, 1.0, weight=torch.ones(5, 2)), "weight"),
        "weight float64": (lambda: h(x, 4, 0.0, 1.0, weight=torch.ones(10, dtype=torch.float64)), "weight"),
        "weight meta": (lambda: h(x, 4, 0.0, 1.0, weight=x.to("meta")), "weight|device"),
        "weight long": (lambda: h(x, 4, 0.0, 1.0, weight=torch.ones(10, dtype=torch.long)), "weight"),
        "weight float": (lambda: h(x, 4, 0.0, 1.0, weight=2.0), "weight must be a Tensor or None, got float"),
        "weight ndarray": (lambda: h(x, 4, 0.0, 1.0, weight=np.ones(10)), "weight must be a Tensor"),
        # dim
        "dim 1 of 1-d": (lambda: h(x, 4, 0.0, 1.0, dim=1), "[Dd]im"),
        "dim -3 of 2-d": (lambda: h(x2, 4, 0.0, 1.0, dim=-3), "[Dd]im"),
        "dim 1 of 0-d": (lambda: h(torch.tensor(0.5), 4, 0.0, 1.0, dim=1), "[Dd]im"),
        "dim str": (lambda: h(x, 4, 0.0, 1.0, dim="a"), r"\bdim\b"),
        "dim float": (lambda: h(x, 4, 0.0, 1.0, dim=0.5), r"\bdim\b"),
        "dim bool": (lambda: h(x, 4, 0.0, 1.0, dim=True), "dim must be an int or None, got bool"),
        "dim list": (lambda: h(x2, 4, 0.0, 1.0, dim=[0]), "dim must be an int or None, got list"),
        # flags: a truthy string is not a yes
        "density str": (lambda: h(x, 4, 0.0, 1.0, density="no"), "density must be a bool, got str"),
        "density None": (lambda: h(x, 4, 0.0, 1.0, density=None), "density must be a bool"),
        "straight_through int": (lambda: h(x, 4, 0.0, 1.0, straight_through=1), "straight_through must be a bool"),
        # histc2d
        "2d y shape": (lambda: h2(x, torch.randn(9), 4, 0.0, 1.0), "x and y"),
        "2d y dtype": (lambda: h2(x, y.double(), 4, 0.0, 1.0), "x and y"),
        "2d y None": (lambda: h2(x, None, 4, 0.0, 1.0), r"\by\b"),
        "2d weight shape": (lambda: h2(x, y, 4, 0.0, 1.0, weight=torch.ones(3)), "weight"),
        "2d bins one": (lambda: h2(x, y, (4,), 0.0, 1.0), "bins"),
        "2d bins 0": (lambda: h2(x, y, (4, 0), 0.0, 1.0), "bins"),
        "2d bins product": (lambda: h2(x, y, (2**16, 2**16), 0.0, 1.0), "bins"),
        "2d min > max": (lambda: h2(x, y, 4, (0.0, 2.0), (1.0, 1.0)), "min must not exceed max"),
        "2d kappa nan": (lambda: h2(x, y, 4, 0.0, 1.0, (1.0, math.nan)), "kappa"),
        "2d kernel": (lambda: h2(x, y, 4, 0.0, 1.0, kernel="cosine"), "kernel"),
        "2d x str": (lambda: h2("a", y, 4, 0.0, 1.0), "histc2d's x must be a Tensor"),
        "2d y device": (lambda: h2(x, y.to("meta"), 4, 0.0, 1.0), r"\by\b|device"),
        "2d bins three": (lambda: h2(x, y, (4, 4, 4), 0.0, 1.0), "bins must be an int or an .x, y. pair"),
        "2d bins str": (lambda: h2(x, y, "4", 0.0, 1.0), "bins must be an int or an .x, y. pair"),
        "2d bins float pair": (lambda: h2(x, y, (4, 4.5), 0.0, 1.0), "bins must be an int or an .x, y. pair"),
        "2d min one": (lambda: h2(x, y, 4, (0.0,), 1.0), "min must be a number or an .x, y. pair"),
        "2d max str": (lambda: h2(x, y, 4, 0.0, ("1", 1.0)), "max must be a number or an .x, y. pair"),
        "2d kappa one": (lambda: h2(x, y, 4, 0.0, 1.0, (2.0,)), "kappa must be a number, None, or an .x, y. pair"),
        "2d kappa str": (lambda: h2(x, y, 4, 0.0, 1.0, "2"), "kappa must be a number, None"),
        "2d weight list": (lambda: h2(x, y, 4, 0.0, 1.0, weight=[1.0] * 10), "weight must be a Tensor or None"),
        "2d dim str": (lambda: h2(x, y, 4, 0.0, 1.0, dim="0"), "dim must be an int or None"),
        "2d kernel int": (lambda: h2(x, y, 4, 0.0, 1.0, kernel=1), "kernel must be a str"),
        # bincount
        "bincount 2-d": (lambda: softhist_ext.bincount(x2), "input"),
        "bincount weights shape": (lambda: softhist_ext.bincount(x.abs(), torch.ones(3)), "weights"),
        "bincount minlength str": (lambda: softhist_ext.bincount(x.abs(), minlength="a"), "minlength"),
        "bincount input list": (lambda: bc([1, 2]), "bincount's input must be a Tensor, got list"),
        "bincount weights list": (lambda: bc(x.abs(), [1.0] * 10), "weights must be a Tensor or None"),
        "bincount minlength float": (lambda: bc(x.abs(), minlength=2.5), "minlength must be an int"),
        "bincount minlength -1": (lambda: bc(x.abs(), minlength=-1), "minlength must be >= 0"),
        "bincount minlength -1 integer input": (lambda: bc(torch.arange(3), minlength=-1), "minlength"),
        "bincount weights dtype": (lambda: bc(x.abs(), x.abs().double()), "weights must have the floating input's dtype"),
        "bincount weights long": (lambda: bc(x.abs(), torch.ones(10, dtype=torch.long)), "weights must have the"),
        "bincount input bool": (lambda: bc(torch.ones(3, dtype=torch.bool)), "input must be integer .* or floating"),
        "bincount input complex": (lambda: bc(torch.ones(3, dtype=torch.complex64)), "input must be integer"),
        "bincount input huge": (lambda: bc(torch.tensor([1.0, 1e30])), r"input reaches 1\.0+15.*e\+30, which needs more than 2\^31 - 1 bins"),
        "bincount kappa str": (lambda: bc(x.abs(), kappa="1"), "kappa must be a number or None"),
        "bincount kernel int": (lambda: bc(x.abs(), kernel=0), "kernel must be a str"),
        # mutual_information and the modules
        "mi x str": (lambda: mi("a", x2), "mutual_information's x must be a Tensor"),
        "mi y None": (lambda: mi(x2, None), r"mutual_information's y must be a Tensor"),
        "mi y shape": (lambda: mi(x2, x), "x and y must have the same shape"),
        "mi weight shape": (lambda: mi(x2, x2, weight=torch.ones(5)), "weight must have x's shape"),
        "mi weight list": (lambda: mi(x2, x2, weight=[1.0] * 10), "weight must be a Tensor or None"),
        "mi 0-d": (lambda: mi(torch.tensor(0.5), torch.tensor(0.5)), "x and y are 0-d"),
        "mi dim int": (lambda: mi(x2, x2, dim=1), "dim must be a list of ints or None, got int"),
        "mi dim of str": (lambda: mi(x2, x2, dim=["1"]), "dim must be a list of ints"),
        "mi dim out of range": (lambda: mi(x2, x2, dim=[2]), r"dim must be in \[-2, 1\] .*got 2"),
        "mi dim -3": (lambda: mi(x2, x2, dim=[-3]), r"dim must be in \[-2, 1\] .*got -3"),
        "mi 2-d without dim": (lambda: mi(x2, x2), r"pass x\[None, None\]"),
        "mi min without max": (lambda: mi(x2, x2, min=0.0, dim=[1]), "min and max together"),
        "mi dim twice": (lambda: mi(x2, x2, dim=[1, -1]), "dim lists dimension 1 twice"),
        "mi dim empty": (lambda: mi(x2, x2, dim=[]), "dim must list at least one"),
        "mi normalized str": (lambda: mi(x2, x2, normalized="yes"), "normalized must be a bool"),
        "mi bins three": (lambda: mi(x2, x2, (4, 4, 4)), "bins must be an int or an .x, y. pair"),
        "mi min str": (lambda: mi(x2, x2, min="0"), "min must be a number"),
        "mi kernel": (lambda: mi(x2, x2, kernel="cosine", dim=[1]), "kernel"),
        "loss bins str": (lambda: MILoss(bins="8"), "MutualInformationLoss's bins must be an int"),
        "loss kappa str": (lambda: MILoss(kappa="2"), "kappa must be a number or None"),
        "loss normalized str": (lambda: MILoss(normalized="no"), "normalized must be a bool"),
        "loss reduction": (lambda: MILoss(reduction="max"), "reduction must be"),
        "loss reduction None": (lambda: MILoss(reduction=None), "reduction must be a str"),
        "loss target None": (lambda: MILoss()(x2, None), "MutualInformationLoss's target must be a Tensor"),
        "loss weight list": (lambda: MILoss()(x2, x2, [1.0]), "weight must be a Tensor or None"),
        "module bins str": (lambda: Hist("8", 0.0, 1.0), "SoftHistogram's bins must be an int"),
        "module min str": (lambda: Hist(8, "0", 1.0), "SoftHistogram's min must be a number"),
        "module sigma str": (lambda: Hist(8, 0.0, 1.0, sigma="2"), "sigma must be a number or None"),
        "module kappa and sigma": (lambda: Hist(8, 0.0, 1.0, 2.0, sigma=2.0), "kappa or its forum name sigma"),
        "module kernel None": (lambda: Hist(8, 0.0, 1.0, kernel=None), "kernel must be a str"),
        "module input str": (lambda: Hist(8, 0.0, 1.0)("a"), "input must be a Tensor"),
        # scripted: TorchScript checks the annotated types itself
        "scripted input str": (lambda: torch.jit.script(h)("a"), "argument 'input'"),
        "scripted bins float": (lambda: torch.jit.script(h)(x, 4.5), "argument 'bins'"),
        # the ops, called directly with inconsistent arguments
        "params bins 0": (lambda: ops.params(x, 0, 0.0, 1.0, None, "logistic"), "bins"),
        "params kernel": (lambda: ops.params(x, 4, 0.0, 1.0, None, "cosine"), "kernel"),
        "params long input": (lambda: ops.params(torch.arange(4), 4, 0.0, 1.0, None, "logistic"), "input"),
        "scatter params float32": (lambda: ops.scatter([x], None, p.float()[None], [5], [0], "logistic"), "params"),
        "scatter params 3 values": (lambda: ops.scatter([x], None, torch.zeros(3, dtype=torch.float64)[None], [5], [0], "logistic"), "params"),
        "scatter params 2-d": (lambda: ops.scatter([x], None, p[None][None], [5], [0], "logistic"), "params"),
        "scatter params strided": (lambda: ops.scatter([x], None, torch.zeros(8, dtype=torch.float64)[::2][None], [5], [0], "logistic"), "params"),
        "scatter params meta": (lambda: ops.scatter([x], None, p.to("meta")[None], [5], [0], "logistic"), "params"),
        "scatter bins 0": (lambda: ops.scatter([x], None, p[None], [0], [0], "logistic"), "bins"),
        "scatter order -1": (lambda: ops.scatter([x], None, p[None], [5], [-1], "logistic"), "order"),
        "scatter order 9": (lambda: ops.scatter([x], None, p[None], [5], [9], "logistic"), "order"),
        "scatter hard order 1": (lambda: ops.scatter([x], None, p[None], [5], [1], "hard"), "hard"),
        "scatter kernel": (lambda: ops.scatter([x], None, p[None], [5], [0], "cosine"), "kernel"),
        "scatter weight shape": (lambda: ops.scatter([x], torch.ones(3), p[None], [5], [0], "logistic"), "weight"),
        "scatter weight dtype": (lambda: ops.scatter([x], x.double(), p[None], [5], [0], "logistic"), "weight"),
        "scatter weight meta": (lambda: ops.scatter([x], x.to("meta"), p[None], [5], [0], "logistic"), "weight|device"),
        "gather hist dtype": (lambda: ops.gather([x], torch.ones(5, dtype=torch.float64), p[None], [1], "logistic"), "hist"),
        "gather hist rows": (lambda: ops.gather([x2], torch.ones(3, 5), p2[None], [1], "logistic"), "hist"),
        "gather hist rank": (lambda: ops.gather([x2], torch.ones(5), p2[None], [1], "logistic"), "hist"),
        "gather hist no bins": (lambda: ops.gather([x], torch.ones(0), p[None], [1], "logistic"), "bins"),
        "gather order 4": (lambda: ops.gather([x], torch.ones(5), p[None], [4], "logistic"), "order"),
        "gather params": (lambda: ops.gather([x], torch.ones(5), p[:2][None], [1], "logistic"), "params"),
        "scatter2d shapes": (lambda: ops.scatter([x, x[:9]], None, torch.stack([p, p]), [5, 5], [0, 0], "logistic"), "every axis must have the same shape"),
        "scatter2d dtypes": (lambda: ops.scatter([x, x.double()], None, torch.stack([p, p]), [5, 5], [0, 0], "logistic"), "same shape, dtype"),
        "scatter2d bins product": (lambda: ops.scatter([x, x], None, torch.stack([p, p]), [2**16, 2**16], [0, 0], "logistic"), "bins"),
        "scatter2d params one row": (lambda: ops.scatter([x, x], None, p[None], [5, 5], [0, 0], "logistic"), "params"),
        "scatter2d bins one": (lambda: ops.scatter([x, x], None, torch.stack([p, p]), [5], [0, 0], "logistic"), "bins must have one entry per axis"),
        "scatter2d orders one": (lambda: ops.scatter([x, x], None, torch.stack([p, p]), [5, 5], [0], "logistic"), "orders must have one entry per axis"),
        "scatter 4 axes": (lambda: ops.scatter([x] * 4, None, torch.stack([p] * 4), [5] * 4, [0] * 4, "logistic"), "coords must hold 1 to 3"),
        "scatter no axes": (lambda: ops.scatter([], None, p[None], [5], [0], "logistic"), "coords"),
        "scatter2d order_y": (lambda: ops.scatter([x, x], None, torch.stack([p, p]), [5, 5], [0, 7], "logistic"), "order"),
        "gather2d hist shape": (lambda: ops.gather([x, x], torch.ones(5), torch.stack([p, p]), [1, 0], "logistic"), "hist"),
        "gather2d hist rows": (lambda: ops.gather([x2, x2], torch.ones(3, 5, 5), torch.stack([p2, p2]), [1, 0], "logistic"), "hist"),
        "gather2d hist no bins": (lambda: ops.gather([x, x], torch.ones(5, 0), torch.stack([p, p]), [1, 0], "logistic"), "bins"),
        "gather2d y shape": (lambda: ops.gather([x, x[:9]], torch.ones(5, 5), torch.stack([p, p]), [1, 0], "logistic"), "every axis must have the same shape"),
        "gather2d params columns": (lambda: ops.gather([x, x], torch.ones(5, 5), torch.stack([p, p])[:, :2], [1, 0], "logistic"), "params"),
    }


ALLOWED = ("RuntimeError", "ValueError", "TypeError", "IndexError")

# Cases whose error is not (yet) clear: the exception type or message does not
# name the argument.
UNCLEAR = {}

CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
import test_robustness as t
results = {{}}
for name, (call, _) in t.fuzz_cases().items():
    try:
        call()
        results[name] = None
    except Exception as e:
        results[name] = [type(e).__name__, str(e)]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def fuzz_results(tmp_path_factory):
    code = CHILD.format(tests=os.path.dirname(os.path.abspath(__file__)))
    # cwd away from the source tree, so the child imports the installed package.
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=300, cwd=tmp_path_factory.mktemp("fuzz"))
    # A segfault or abort shows as a negative or non-zero return code.
    assert child.returncode == 0, f"fuzzing crashed the process ({child.returncode}):\n{child.stderr[-3000:]}"
    return json.loads(child.stdout.strip().splitlines()[-1])


def fuzz_param(name):
    marks = [pytest.mark.xfail(strict=True, reason=UNCLEAR[name])] if name in UNCLEAR else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [fuzz_param(n) for n in fuzz_cases()])
def test_bad_arguments_raise_naming_the_argument(fuzz_results, name):
    import re

    result = fuzz_results[name]
    assert result is not None, f"{name}: no exception"
    kind, message = result
    assert kind in ALLOWED, f"{name}: {kind}: {message}"
    pattern = fuzz_cases()[name][1]
    assert re.search(pattern, message), f"{name}: message does not name the argument: {message}"


def test_own_range_by_one_pass_equals_the_passes_that_leave_nonfinite_samples_out():
    # Where every sample is finite, each row's own range comes from one min-max
    # pass; it must equal what the passes for non-finite samples give.
    from softhist_ext._ranges import finite_range, widened_finite_range

    x = torch.randn(5, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1000
    x[1] = 7.0  # a point: widened by 1 on each side
    x[2, 3] = -0.0
    for rows in ([x], [x.float(), 2 * x.float()], [x[:, :1]]):
        fast, slow = finite_range(rows), widened_finite_range(rows)
        assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])
    y = x.clone()
    y[0, 5], y[3, 0] = float("nan"), float("-inf")
    lo, hi = finite_range([y])
    assert lo[0].item() == torch.cat([x[0, :5], x[0, 6:]]).min().item()
    assert lo[3].item() == x[3, 1:].min().item() and hi[3].item() == x[3, 1:].max().item()
    clean_lo, clean_hi = finite_range([x])  # the rows without a non-finite sample
    assert torch.equal(lo[1:3], clean_lo[1:3]) and torch.equal(hi[4:], clean_hi[4:])


def test_float32_rows_whose_span_overflows_float_equal_float64():
    # Rows reaching past +-1.7e38: hi - lo overflows float32, where each row's
    # own range maps the samples onto [0, 1] (it gave NaN maps, all-1 CDFs and
    # a distance of 0). float64 holds the same values exactly.
    from softhist_ext import functional as F
    from softhist_ext import losses as L

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64) * 6e38 - 3e38
    y = torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64) * 5e38 - 2e38
    x, y = x.float().double(), y.float().double()  # (float32's values)
    calls = {
        "equalize": lambda a, b: F.equalize(a, 8),
        "match_histograms": lambda a, b: F.match_histograms(a, b, 8) / 1e38,  # (rounds in 1e38s)
        "mutual_information": lambda a, b: softhist_ext.mutual_information(a, b, 8),
        "histogram_distance emd": lambda a, b: L.histogram_distance(a, b, bins=8, distance="emd"),
        "histogram_distance l1": lambda a, b: L.histogram_distance(a, b, bins=8, distance="l1"),
    }
    for name, call in calls.items():
        single, double = call(x.float(), y.float()), call(x, y)
        assert torch.isfinite(single).all(), name
        torch.testing.assert_close(single.double(), double, rtol=1e-5, atol=1e-6, msg=name)
