"""C++ deployment: the CMake-built library (ops + C++ autograd), its installed
CMake package, and examples/cpp running a TorchScript model with no Python.

Builds against the torch of the running interpreter, installs to a temporary
prefix and builds the example from that install with find_package.
"""

import importlib.util
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

import pytest
import torch
import torch.utils

import softhist_ext  # the ops, for the Python reference
import softhist_ext.losses

ROOT = Path(__file__).resolve().parents[1]
TORCH_PREFIX = torch.utils.cmake_prefix_path


def _cxx_compiler():
    candidates = [os.environ.get("CXX"), "c++", "g++", "clang++"]
    return next((c for c in candidates if c and shutil.which(c)), None)


pytestmark = [
    pytest.mark.slow,  # builds the library with CMake: minutes
    pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed"),
    pytest.mark.skipif(_cxx_compiler() is None, reason="no C++ compiler (c++, g++, clang++)"),
]


def _run(args, **kwargs):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited with {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result.stdout


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """The library built and installed with the top-level CMakeLists.txt."""
    tmp = tmp_path_factory.mktemp("cmake")
    prefix = tmp / "prefix"
    build = tmp / "build"
    _run(["cmake", "-S", ROOT, "-B", build, f"-DCMAKE_PREFIX_PATH={TORCH_PREFIX}",
          f"-DCMAKE_INSTALL_PREFIX={prefix}"])
    _run(["cmake", "--build", build, "--parallel", "2"])
    _run(["cmake", "--install", build])
    return prefix


@pytest.fixture(scope="module")
def deploy(prefix, tmp_path_factory):
    """examples/cpp built against the installed package."""
    build = tmp_path_factory.mktemp("example")
    args = ["cmake", "-S", ROOT / "examples" / "cpp", "-B", build,
            f"-DCMAKE_PREFIX_PATH={prefix};{TORCH_PREFIX}"]
    if sys.platform.startswith("linux"):
        # The program references no symbol of the library (it only runs a
        # TorchScript model); the package must keep it linked even where
        # --as-needed, the default on several distributions, would drop it.
        args.append("-DCMAKE_EXE_LINKER_FLAGS=-Wl,--as-needed")
    _run(args)
    _run(["cmake", "--build", build, "--parallel", "2"])
    return build / "softhist_deploy"


def _example_module():
    spec = importlib.util.spec_from_file_location(
        "export_model", ROOT / "examples" / "cpp" / "export_model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python_reference(model, x):
    """What main.cpp computes, in Python (eager, Python autograd)."""
    x = x.clone().requires_grad_()
    hist = model(x)
    loss = hist.pow(2).sum()
    grad_shift, grad_input = torch.autograd.grad(loss, (model.shift, x), create_graph=True)
    (grad2_shift,) = torch.autograd.grad(grad_shift, model.shift)
    return {
        "hist": hist.detach(),
        "grad_shift": grad_shift.detach().reshape(1),
        "grad_input": grad_input.detach(),
        "grad2_shift": grad2_shift.reshape(1),
    }


def _parse(stdout):
    """main.cpp's summary lines: "name: v", or "name: n=N sum=S max_abs=M at=I
    values=v0 v1 ..." (the first values, "..." where there are more)."""
    values = {}
    for line in stdout.splitlines():
        name, _, rest = line.partition(": ")
        if "=" not in rest:
            values[name] = {"value": float(rest)}
            continue
        head, _, shown = rest.partition(" values=")
        fields = dict(field.split("=") for field in head.split())
        values[name] = {
            "n": int(fields["n"]),
            "sum": float(fields["sum"]),
            "max_abs": float(fields["max_abs"]),
            "at": int(fields["at"]),
            "values": [float(v) for v in shown.split() if v != "..."],
            "more": shown.endswith("..."),
        }
    return values


def _summary(t):
    """What main.cpp prints for t, from Python's values."""
    t = t.detach().to(torch.float64).reshape(-1)
    if t.numel() == 1:
        return {"value": t.item()}
    shown = t[:8].tolist()
    return {"n": t.numel(), "sum": t.sum().item(), "max_abs": t.abs().max().item(),
            "at": t.abs().argmax().item(), "values": shown, "more": t.numel() > len(shown)}


def test_cpp_program_matches_python(deploy, tmp_path):
    example = _example_module()
    model_path = tmp_path / "model.pt"
    example.export(str(model_path), shift=0.25)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(500, dtype=torch.float64, generator=gen) * 1.3  # some beyond [-2, 2]
    samples = " ".join(repr(v) for v in x.tolist())

    got = _parse(_run([deploy, model_path], input=samples))
    expected = {name: _summary(t) for name, t in
                _python_reference(example.ShiftedHistogram(shift=0.25), x).items()}

    assert set(got) == set(expected) | {"direct_diff"}
    assert got["grad_input"]["n"] == 500 and got["grad_input"]["more"]
    assert got["hist"]["n"] == 8 and not got["hist"]["more"]  # every bin shown
    for name, want in expected.items():
        have = got[name]
        assert set(have) == set(want), name
        # The output has 10 significant digits; sums may cancel, so compare
        # them relative to the tensor's largest magnitude.
        close = dict(rel_tol=1e-9, abs_tol=1e-9 * want.get("max_abs", abs(want.get("value", 0))))
        for key, value in want.items():
            if key == "values":
                assert len(have[key]) == len(value), name
                for a, b in zip(have[key], value):
                    assert math.isclose(a, b, **close), (name, a, b)
            elif isinstance(value, float):
                assert math.isclose(have[key], value, **close), (name, key, have[key], value)
            else:
                assert have[key] == value, (name, key)
    assert abs(expected["grad2_shift"]["value"]) > 1  # the second derivative is not trivially 0
    hist_scale = expected["hist"]["max_abs"]
    assert got["direct_diff"]["value"] <= 1e-12 * hist_scale


def test_cpp_program_rejects_bad_input(deploy, tmp_path):
    result = subprocess.run([str(deploy), str(tmp_path / "model.pt")], input="1.0 oops",
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "numbers only (sample 2" in result.stderr


# Run in a fresh interpreter: the library defines the ops, so it can't share a
# process with the Python package's own build of them.
_CPP_AUTOGRAD_FROM_PYTHON = textwrap.dedent(
    """
    import importlib, sys, types
    import torch
    from torch.autograd import gradcheck, gradgradcheck

    torch.ops.load_library(sys.argv[1])
    # The Python registrations, loaded after the C++ autograd, must keep it.
    # The package's modules without its __init__ (which loads its own build).
    package = types.ModuleType("softhist_ext")
    package.__path__ = [sys.argv[2]]
    sys.modules["softhist_ext"] = package
    importlib.import_module("softhist_ext._registrations")

    ops = torch.ops.softhist
    gen = torch.Generator().manual_seed(0)
    bins = [7, 5, 4]
    coords = [(torch.randn(2, 20, dtype=torch.float64, generator=gen) * 1.5).requires_grad_()
              for _ in bins]
    w = torch.rand(2, 20, dtype=torch.float64, generator=gen).requires_grad_()

    def params(kernel, D):
        return torch.stack([ops.params(c, b, -2.0, 2.0, 2.0, kernel)
                            for c, b in zip(coords[:D], bins[:D])])

    p = params("logistic", 1)
    assert not p.requires_grad and p.grad_fn is None, "params must stay off the graph"
    h = torch.randn(2, 7, dtype=torch.float64).requires_grad_()
    names = {
        "scatter": ops.scatter(coords[:1], w, p, [7], [0], "logistic").grad_fn.name(),
        "gather": ops.gather(coords[:1], h, p, [0], "logistic").grad_fn.name(),
    }
    assert "ScatterFunction" in names["scatter"], names
    assert "GatherFunction" in names["gather"], names

    # params' range and kappa (one axis), through the edge sums: every op, with
    # the open flag held fixed (a perturbation would flip it).
    c = torch.randn(2, 8, dtype=torch.float64, generator=gen).requires_grad_()
    assert "ScatterFunction" in ops.scatter([coords[0]], w, p, [7], [1], "logistic", [0]).grad_fn.name()
    assert "GatherFunction" in ops.gather([coords[0]], c, p, [1], "logistic", [0]).grad_fn.name()
    for kernel in ["logistic", "bspline"]:
        for open_ends in [False, True]:
            row = ops.params(coords[0], 7, -2.0, 2.0, 2.0, kernel, open_ends)
            lo_hi_kappa, flag = row[:3].clone().requires_grad_(), row[3:]

            def full(v, flag=flag):
                return torch.cat([v, flag])[None]

            checks = [
                (lambda x, w, v, k=kernel: ops.scatter([x], w, full(v), [7], [0], k), w),
                (lambda x, h, v, k=kernel: ops.gather([x], h, full(v), [1], k), h),
                (lambda x, w, v, k=kernel: ops.scatter([x], w, full(v), [7], [1], k, [0]), w),
                (lambda x, c, v, k=kernel: ops.gather([x], c, full(v), [1], k, [0]), c),
            ]
            for i, (f, other) in enumerate(checks):
                args = (coords[0], other, lo_hi_kappa)
                assert gradcheck(f, args), (kernel, open_ends, i)
                assert gradgradcheck(f, args), (kernel, open_ends, i)
    # Enough samples for Chebyshev pieces: the forward takes the edge sums
    # (scatter_edge_sums); its first-order gradients equal those of the
    # separate, differentiable ops (create_graph), with x's gradient wanted
    # or not (then the backward reads only the sums).
    big = torch.randn(2, 20000, dtype=torch.float64, generator=gen).requires_grad_()
    wb = torch.rand(2, 20000, dtype=torch.float64, generator=gen)
    g = torch.randn(2, 7, dtype=torch.float64, generator=gen)
    for kernel in ["logistic", "bspline"]:
        row = ops.params(big, 7, -2.0, 2.0, None, kernel, True)
        v = row[:3].clone().requires_grad_()
        x_hist, s, taken = ops.scatter_edge_sums(big.detach(), wb, row[None], 7, kernel)
        assert taken, kernel
        for x in (big, big.detach()):
            wanted = (x, v) if x.requires_grad else (v,)
            grads = [torch.autograd.grad((ops.scatter([x], wb, torch.cat([v, row[3:]])[None], [7],
                                                      [0], kernel) * g).sum(), wanted,
                                         create_graph=cg)
                     for cg in (False, True)]
            for a, b in zip(*grads):
                torch.testing.assert_close(a, b.detach(), rtol=1e-9, atol=1e-9)

    # Explicit, uneven edges in params (after its first 4 values), and kappa.
    edges = torch.tensor([-2.0, -1.2, -1.0, 0.3, 0.4, 1.1, 1.5, 2.0], dtype=torch.float64)
    edges_kappa = torch.cat([edges, torch.tensor([2.5], dtype=torch.float64)]).requires_grad_()

    def explicit(v):
        return torch.cat([torch.stack([v[0], v[-2], v[-1]]), torch.zeros(1, dtype=v.dtype), v[:-1]])[None]

    for f, other in [
        (lambda x, w, v: ops.scatter([x], w, explicit(v), [7], [0], "gaussian"), w),
        (lambda x, h, v: ops.gather([x], h, explicit(v), [1], "gaussian"), h),
    ]:
        assert gradcheck(f, (coords[0], other, edges_kappa)), "explicit edges"
        assert gradgradcheck(f, (coords[0], other, edges_kappa)), "explicit edges"
    # Enough samples for uneven pieces (a compact kernel): the forward keeps
    # the samples' places (scatter_places) and the first-order backward reads
    # them; its gradients for x and the weights equal those of the separate,
    # differentiable ops (create_graph).
    xb = (torch.randn(2, 30000, dtype=torch.float64, generator=gen) * 1.5).requires_grad_()
    wb = torch.rand(2, 30000, dtype=torch.float64, generator=gen).requires_grad_()
    pe = torch.cat([torch.tensor([-2.0, 2.0, 2.5, 0.0], dtype=torch.float64), edges])[None]
    assert ops.scatter_places(xb.detach(), None, pe, 7, "bspline")[3]
    gb = torch.randn(2, 7, dtype=torch.float64, generator=gen)
    from torch.utils._python_dispatch import TorchDispatchMode

    class Called(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.__name__.split(".")[0])
            return func(*args, **(kwargs or {}))

    grads = []
    for cg in (False, True):
        with Called() as called:
            out = ops.scatter([xb], wb, pe, [7], [0], "bspline")
            grads.append(torch.autograd.grad((out * gb).sum(), [xb, wb], create_graph=cg))
        assert ("gather_at_places" in called.names) == (not cg), called.names
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b.detach(), rtol=1e-9, atol=1e-9)

    # One description for every D: first and second derivatives, for each
    # axis count, with weights and without, at raised orders on some axes.
    for kernel in ["logistic", "gaussian"]:
        for D in [1, 2, 3]:
            p, b = params(kernel, D), bins[:D]
            h = torch.randn([2] + b, dtype=torch.float64, generator=gen).requires_grad_()
            raised = [a % 2 for a in range(D)]  # 0, 1, 0

            def scatter(*args, D=D, p=p, b=b, kernel=kernel):
                return ops.scatter(list(args[:D]), args[D], p, b, [0] * D, kernel)

            def scatter_raised(*cs, p=p, b=b, kernel=kernel, raised=raised):
                return ops.scatter(list(cs), None, p, b, raised, kernel)

            def gather(*args, D=D, p=p, kernel=kernel, raised=raised):
                return ops.gather(list(args[:D]), args[D], p, raised, kernel)

            checks = [
                (scatter, (*coords[:D], w)),
                (scatter_raised, tuple(coords[:D])),
                (gather, (*coords[:D], h)),
            ]
            if D > 1:  # every axis's range and kappa (open flags held fixed)
                v, flags = p[:, :3].clone().requires_grad_(), p[:, 3:]

                def scatter_params(x, w, v, D=D, b=b, kernel=kernel, flags=flags):
                    pv = torch.cat([v, flags], 1)
                    return ops.scatter([x] + coords[1:D], w, pv, b, [0] * D, kernel)

                def gather_params(x, h, v, D=D, kernel=kernel, flags=flags, raised=raised):
                    return ops.gather([x] + coords[1:D], h, torch.cat([v, flags], 1), raised, kernel)

                checks += [(scatter_params, (coords[0], w, v)), (gather_params, (coords[0], h, v))]
            for f, args in checks:
                assert gradcheck(f, args), (kernel, D, f.__name__)
                assert gradgradcheck(f, args), (kernel, D, f.__name__)
            # Gradients only where asked: a constant axis gets none.
            out = ops.scatter([coords[0].detach()] + coords[1:D], None, p, b, [0] * D, kernel)
            assert out.requires_grad == (D > 1)

    # 16-bit samples: the range's and kappa's gradients (edge sums past
    # float16's 65504, kappa's cancelling terms) are those of the same values
    # in float64.
    x16 = (torch.randn(1, 100000, generator=gen) * 0.5).half()
    g = torch.linspace(-1, 1, 32).half().double()
    grads = []
    for x in (x16, x16.double()):
        v = torch.tensor([[-2.0, 2.0, 16.0]], dtype=torch.float64, requires_grad=True)
        out = ops.scatter([x], None, torch.cat([v, torch.zeros(1, 1, dtype=torch.float64)], 1),
                          [32], [0], "logistic")
        grads.append(torch.autograd.grad((out.double() * g).sum(), v)[0][0])
    torch.testing.assert_close(grads[0][:2], grads[1][:2], rtol=1e-4, atol=0)
    torch.testing.assert_close(grads[0][2], grads[1][2], rtol=2e-2, atol=0)

    # 16-bit samples' own gradients, where the weights (or gather's upstream
    # gradient) scale down a gather that alone passes 65504: float32's.
    g = torch.tensor([30000.0, -30000.0] * 5)
    found = []
    for dtype in (torch.float16, torch.float32):
        x = torch.tensor([21 / 64], dtype=dtype, requires_grad=True)  # (values exact in float16)
        small = torch.tensor([1 / 128], dtype=dtype)
        pv = ops.params(x.detach(), 10, 0.0, 1.0, None, "logistic")[None]
        out = ops.scatter([x], small, pv, [10], [0], "logistic")
        (gx,) = torch.autograd.grad((out * g.to(dtype)).sum(), x)
        (gy,) = torch.autograd.grad(ops.gather([x], g.to(dtype), pv, [0], "logistic"), x, small)
        found.append(torch.cat([gx, gy]).float())
    assert found[0].isfinite().all(), found
    torch.testing.assert_close(found[0], found[1], rtol=1e-3, atol=0)
    print("ok")
    """
)


def test_cpp_autograd_from_python(prefix):
    (library,) = prefix.glob("lib*/libsofthist_ext.so")
    out = _run([sys.executable, "-c", _CPP_AUTOGRAD_FROM_PYTHON, library, ROOT / "softhist_ext"])
    assert out.strip() == "ok"


# A generic C++ program for scripted models that carry their inputs (an
# attribute `inputs`, a list of tensors): the scalar the model returns, its
# gradients with respect to the model's parameters and the inputs (create_graph),
# and the gradients of the sum of the parameters' gradients with respect to
# the parameters and the inputs (a Hessian-vector product). One line each,
# "name: v0 v1 ...", every value, to 17 significant digits.
_GRADS_CPP = r"""
#include <softhist_ext/softhist.h>
#include <torch/autograd.h>
#include <torch/script.h>

#include <cstdio>
#include <string>
#include <vector>

static void print(const std::string& name, const torch::Tensor& t) {
  std::printf("%s:", name.c_str());
  if (t.defined()) {
    const torch::Tensor flat = t.detach().to(torch::kFloat64).contiguous().reshape({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) std::printf(" %.17g", flat[i].item<double>());
  } else {
    std::printf(" none");
  }
  std::printf("\n");
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  try {
    torch::jit::Module model = torch::jit::load(argv[1]);
    std::vector<std::string> names;
    std::vector<torch::Tensor> wrt;
    for (const auto& p : model.named_parameters()) {
      names.push_back(p.name);
      wrt.push_back(p.value);
    }
    const size_t n_params = wrt.size();
    std::vector<torch::jit::IValue> args;
    const auto inputs = model.attr("inputs").toTensorList();
    for (size_t i = 0; i < inputs.size(); ++i) {
      torch::Tensor x = inputs.get(i).detach().clone().requires_grad_();
      names.push_back("input" + std::to_string(i));
      wrt.push_back(x);
      args.emplace_back(x);
    }
    const torch::Tensor loss = model.forward(args).toTensor();
    const auto grads = torch::autograd::grad({loss}, wrt, {}, /*retain_graph=*/true,
                                             /*create_graph=*/true);
    torch::Tensor v = torch::zeros({}, loss.options());
    for (size_t i = 0; i < n_params; ++i) v = v + grads[i].sum();
    const auto grads2 = torch::autograd::grad({v}, wrt, {}, /*retain_graph=*/false,
                                              /*create_graph=*/false, /*allow_unused=*/true);
    print("loss", loss);
    for (size_t i = 0; i < wrt.size(); ++i) print("grad:" + names[i], grads[i]);
    for (size_t i = 0; i < wrt.size(); ++i) print("grad2:" + names[i], grads2[i]);
    // A model with a method joint(x, y) (its histc2d of two inputs) is also
    // compared with the header's softhist::histc2d at the model's settings.
    if (model.find_method("joint")) {
      const torch::Tensor x = inputs.get(0), y = inputs.get(1);
      const torch::Tensor joint = model.run_method("joint", x, y).toTensor();
      const auto bins = model.attr("joint_bins").toIntVector();
      const torch::Tensor direct = softhist::histc2d(
          x, y, {bins.at(0), bins.at(1)}, model.attr("joint_min").toDouble(),
          model.attr("joint_max").toDouble(), std::nullopt,
          model.attr("joint_kernel").toStringRef());
      // One bins for both axes, as Python's; an undefined weight is none.
      const torch::Tensor square = softhist::histc2d(
          x, y, bins.at(0), model.attr("joint_min").toDouble(), model.attr("joint_max").toDouble(),
          std::nullopt, model.attr("joint_kernel").toStringRef(), torch::Tensor());
      TORCH_CHECK(square.size(0) == bins.at(0) && square.size(1) == bins.at(0),
                  "histc2d's one bins must be both axes'");
      print("joint", joint);
      print("joint_direct_diff", (joint - direct).abs().max());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
"""

_GRADS_CMAKE = """
cmake_minimum_required(VERSION 3.18)
project(softhist_grads LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
find_package(SofthistExt REQUIRED)
add_executable(softhist_grads main.cpp)
target_link_libraries(softhist_grads PRIVATE SofthistExt::SofthistExt)
"""


@pytest.fixture(scope="module")
def grads_program(prefix, tmp_path_factory):
    """_GRADS_CPP built against the installed package."""
    src = tmp_path_factory.mktemp("grads_src")
    (src / "main.cpp").write_text(_GRADS_CPP)
    (src / "CMakeLists.txt").write_text(_GRADS_CMAKE)
    build = tmp_path_factory.mktemp("grads_build")
    _run(["cmake", "-S", src, "-B", build, f"-DCMAKE_PREFIX_PATH={prefix};{TORCH_PREFIX}"])
    _run(["cmake", "--build", build])
    return build / "softhist_grads"


class MutualInformationModel(torch.nn.Module):
    """Registration-style: -MI between a shifted moving image and a fixed one,
    plus a term on their joint histogram (histc2d)."""

    def __init__(self):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.tensor(0.03, dtype=torch.float64))
        self.mi = softhist_ext.losses.MutualInformationLoss(bins=16, min=0.0, max=1.0)
        self.joint_bins: List[int] = [12, 10]
        self.joint_min, self.joint_max, self.joint_kernel = 0.0, 1.0, "gaussian"

    @torch.jit.export
    def joint(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        bins = (self.joint_bins[0], self.joint_bins[1])
        return softhist_ext.histc2d(x, y, bins, self.joint_min, self.joint_max,
                                    kernel=self.joint_kernel)

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        shifted = moving + self.shift
        return self.mi(shifted, fixed) + 1e-4 * self.joint(shifted, fixed).pow(2).sum()


def _mutual_information_case():
    gen = torch.Generator().manual_seed(5)
    fixed = torch.rand(2, 1, 12, 12, dtype=torch.float64, generator=gen) * 0.8 + 0.1
    moving = (0.9 - fixed + 0.05 * torch.randn(fixed.shape, dtype=torch.float64, generator=gen))
    return MutualInformationModel(), [moving, fixed]


class HistogramddModel(torch.nn.Module):
    """A 3-d soft histogram of shifted samples (N, 3), the shift learnable."""

    def __init__(self):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.tensor([0.1, -0.05, 0.02], dtype=torch.float64))

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        hist, _ = softhist_ext.histogramdd(samples + self.shift, [6, 5, 4],
                                           [-2.0, 2.0, -2.0, 2.0, -2.0, 2.0])
        return hist.pow(2).sum()


def _histogramdd_case():
    gen = torch.Generator().manual_seed(6)
    return HistogramddModel(), [torch.randn(300, 3, dtype=torch.float64, generator=gen)]


# Scripted models for the C++ program: (name, factory returning the module and
# its inputs). A model's forward takes its inputs as tensors and returns a
# scalar; a model with a joint(x, y) method is also checked against
# softhist::histc2d.
SCRIPTED_MODELS = [("mutual_information", _mutual_information_case), ("histogramdd", _histogramdd_case)]


def _grads_reference(model, inputs):
    """What _GRADS_CPP computes, in Python (eager, Python autograd)."""
    named = list(model.named_parameters())
    names = [name for name, _ in named] + [f"input{i}" for i in range(len(inputs))]
    xs = [x.detach().clone().requires_grad_() for x in inputs]
    wrt = [p for _, p in named] + xs
    loss = model(*xs)
    grads = torch.autograd.grad(loss, wrt, create_graph=True)
    v = sum(g.sum() for g in grads[: len(named)])
    grads2 = torch.autograd.grad(v, wrt, allow_unused=True)
    out = {"loss": loss.detach()}
    out.update({f"grad:{n}": g.detach() for n, g in zip(names, grads)})
    out.update({f"grad2:{n}": g for n, g in zip(names, grads2)})
    if hasattr(model, "joint"):
        out["joint"] = model.joint(*inputs[:2]).detach()
    return out


def _parse_full(stdout):
    values = {}
    for line in stdout.splitlines():
        name, _, rest = line.partition(":")
        name2, sep, rest2 = rest.partition(":")
        if sep and name in ("grad", "grad2"):
            name, rest = f"{name}:{name2}", rest2
        fields = rest.split()
        values[name] = None if fields == ["none"] else torch.tensor([float(v) for v in fields],
                                                                  dtype=torch.float64)
    return values


@pytest.mark.parametrize("case", [factory for _, factory in SCRIPTED_MODELS],
                         ids=[name for name, _ in SCRIPTED_MODELS])
def test_cpp_scripted_model_matches_python(grads_program, tmp_path, case):
    model, inputs = case()
    expected = _grads_reference(model, inputs)

    model.inputs = [x.detach().clone() for x in inputs]  # read by the C++ program
    model_path = tmp_path / "model.pt"
    torch.jit.script(model).save(str(model_path))
    result = subprocess.run([str(grads_program), str(model_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "autograd kernel was not registered" not in result.stderr, result.stderr[-4000:]
    got = _parse_full(result.stdout)

    direct_diff = got.pop("joint_direct_diff", None)
    assert set(got) == set(expected)
    if "joint" in expected:  # the header's histc2d agrees with the model's
        assert direct_diff.item() <= 1e-12 * expected["joint"].abs().max().item()
    for name, want in expected.items():
        have = got[name]
        if want is None:
            assert have is None, name
            continue
        assert have is not None, name
        want = want.reshape(-1)
        assert have.shape == want.shape, name
        diff = (have - want).abs().max().item()
        scale = max(1.0, want.abs().max().item())
        assert diff <= 1e-9 * scale, (name, diff, scale)
    # The checks mean something: gradients reach the parameters and both
    # inputs, and the second derivative is not trivially 0.
    for name, want in expected.items():
        if name.startswith("grad"):
            assert want is not None and want.abs().max() > 0, name
