"""The ops as the dispatcher sees them: opcheck, TorchScript, torch.compile."""

import io
import subprocess
import sys
import textwrap
from typing import List

import pytest
import torch
from torch.library import opcheck

import softhist_ext

ops = torch.ops.softhist


KERNELS = list(softhist_ext.KERNELS)


def _params(x, bins, lo, hi, kappa, kernel="logistic"):
    return ops.params(x.detach(), bins, lo, hi, kappa, kernel)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opcheck_params(device, dtype):
    x = torch.randn(50, dtype=dtype, device=device, requires_grad=True)
    opcheck(ops.params, (x, 10, -2.0, 2.0, None, "logistic"))
    opcheck(ops.params, (x, 10, 0.0, 0.0, 3.0, "bspline"))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_opcheck_scatter(device, kernel, order, weighted):
    x = torch.randn(3, 40, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.rand(3, 40, dtype=torch.float64, device=device, requires_grad=True) if weighted else None
    p = _params(x, 9, -2.0, 2.0, 3.0, kernel)
    opcheck(ops.scatter, ([x], w, p[None], [9], [order], kernel))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("order", [0, 1, 2])
def test_opcheck_gather(device, kernel, order):
    x = torch.randn(2, 40, dtype=torch.float64, device=device, requires_grad=True)
    h = torch.randn(2, 9, dtype=torch.float64, device=device, requires_grad=True)
    p = _params(x, 9, -2.0, 2.0, 3.0, kernel)
    opcheck(ops.gather, ([x], h, p[None], [order], kernel))


def test_opcheck_hard_kernel(device):
    x = torch.randn(50, dtype=torch.float64, device=device)
    w = torch.rand(50, dtype=torch.float64, device=device, requires_grad=True)
    p = _params(x, 9, -2.0, 2.0, None, "hard")
    opcheck(ops.scatter, ([x], w, p[None], [9], [0], "hard"))
    opcheck(ops.gather, ([x], torch.randn(9, dtype=torch.float64, device=device), p[None], [0], "hard"))


@pytest.mark.parametrize("kernel", KERNELS)
def test_scatter_and_gather_are_transposes(device, kernel):
    # <scatter(x, w), h> == <w, gather(x, h)> for every order: the identity the
    # autograd formulas rest on.
    x = torch.randn(2, 300, dtype=torch.float64, device=device)
    w = torch.randn(2, 300, dtype=torch.float64, device=device)
    h = torch.randn(2, 11, dtype=torch.float64, device=device)
    p = _params(x, 11, -2.0, 2.0, 2.5, kernel)
    for order in range(4):
        lhs = (ops.scatter([x], w, p[None], [11], [order], kernel) * h).sum()
        rhs = (w * ops.gather([x], h, p[None], [order], kernel)).sum()
        torch.testing.assert_close(lhs, rhs, rtol=1e-11, atol=1e-11)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.tensor(0.25))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return softhist_ext.histc(x + self.shift, 16, -3.0, 3.0, 5.0)


def test_torchscript_gradients_save_and_load_in_a_fresh_process(tmp_path):
    torch.manual_seed(0)
    scripted = torch.jit.script(Model())
    x = torch.randn(500)
    hist = scripted(x)
    hist.pow(2).sum().backward()
    eager = Model()
    eager(x).pow(2).sum().backward()
    torch.testing.assert_close(hist, eager(x))
    torch.testing.assert_close(scripted.shift.grad, eager.shift.grad)
    assert scripted.shift.grad.abs() > 0

    path = tmp_path / "model.pt"
    scripted.save(str(path))
    torch.save({"x": x, "hist": hist.detach(), "grad": scripted.shift.grad}, tmp_path / "io.pt")
    code = textwrap.dedent(
        f"""
        import torch, softhist_ext
        m = torch.jit.load({str(path)!r})
        io = torch.load({str(tmp_path / "io.pt")!r})
        h = m(io["x"])
        h.pow(2).sum().backward()
        torch.testing.assert_close(h, io["hist"])
        torch.testing.assert_close(m.shift.grad, io["grad"])
        print("ok")
        """
    )
    # cwd away from the source tree, so the installed package is imported.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("lo,hi", [(-3.0, 3.0), (0.0, 0.0)])
def test_torch_compile_fullgraph_forward_and_backward(device, lo, hi):
    torch._dynamo.reset()

    def loss(x):
        return softhist_ext.histc(x * 1.5, 20, lo, hi).pow(2).sum()

    compiled = torch.compile(loss, fullgraph=True)
    for n in (1000, 1500):  # a second shape exercises recompilation / dynamic shapes
        x = torch.randn(n, dtype=torch.float64, device=device, requires_grad=True)
        xe = x.detach().clone().requires_grad_()
        value = compiled(x)
        value.backward()
        expected = loss(xe)
        expected.backward()
        torch.testing.assert_close(value, expected)
        torch.testing.assert_close(x.grad, xe.grad)


def test_gather_gives_exactly_zero_to_samples_that_reach_no_bin(device):
    x = torch.tensor([-50.0, 0.1, 50.0, float("nan")], dtype=torch.float64, device=device)
    p = _params(x, 4, -1.0, 1.0, 3.0)
    hist = torch.tensor([float("nan"), 1.0, 2.0, float("inf")], dtype=torch.float64, device=device)
    out = ops.gather([x], hist, p[None], [1], "logistic")
    assert out[0] == 0 and out[2] == 0 and out[3] == 0


def test_every_public_function_scripts():
    x = torch.rand(2, 50, dtype=torch.float64) * 4
    y = torch.rand(2, 50, dtype=torch.float64)
    calls = [
        (softhist_ext.histc, (x, 8, 0.0, 4.0, None, "gaussian", y, -1, True, False)),
        (softhist_ext.histc2d, (x, y, (4, 3), (0.0, 0.0), (4.0, 1.0), (None, 5.0), "bspline", y, -1)),
        (softhist_ext.bincount, (x[0], y[0], 7, 3.0, "triangular")),
        (softhist_ext.mutual_information, (x, y, 8, (0.0, 0.0), (4.0, 1.0), None, "bspline", False, None, [1])),
        (softhist_ext.mutual_information, (x, y, 8, None, None, None, "bspline", True, y, [-1], False)),
    ]
    for f, args in calls:
        torch.testing.assert_close(torch.jit.script(f)(*args), f(*args))


class _Models(torch.nn.Module):
    """Every public function in one scripted module."""

    def __init__(self):
        super().__init__()
        self.loss = softhist_ext.losses.MutualInformationLoss(8)
        self.layer = softhist_ext.nn.SoftHistogram(6, 0.0, 1.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> List[torch.Tensor]:
        xy = torch.stack([x.flatten(), y.flatten()], -1)
        return [
            softhist_ext.histc(x, 8, 0.0, 1.0, None, "bspline", None, -1, False, False, True),
            softhist_ext.histc2d(x, y, (4, 3), 0.0, 1.0, None, "gaussian", None, -1),
            softhist_ext.histogramdd(xy, [4, 5], [0.0, 1.0, 0.0, 1.0], None, True).hist,
            softhist_ext.histogramdd(xy, 3).hist,
            softhist_ext.mutual_information(x[None, None], y[None, None], 8),
            softhist_ext.mutual_information(x, y, 8, 0.0, 1.0, None, "bspline", False, None, [-1]),
            self.loss(x[None, None], y[None, None]),
            self.layer(x),
            softhist_ext.bincount(x.flatten() * 5, None, 0, None, "triangular"),
        ]


def test_scripted_modules_save_and_load():
    # Loading recompiles the serialised code, which must not trip over names
    # (histogramdd's `range` argument) or types the first compilation accepted.
    x = torch.rand(2, 60, dtype=torch.float64)
    y = torch.rand(2, 60, dtype=torch.float64)
    scripted = torch.jit.script(_Models())
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    for a, b in zip(loaded(x, y), _Models()(x, y)):
        torch.testing.assert_close(a, b)
