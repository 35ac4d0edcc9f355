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

import pytest
import torch
import torch.utils

import softhist_ext  # noqa: F401  (the ops, for the Python reference)

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
    import importlib.util, sys
    import torch
    from torch.autograd import gradcheck, gradgradcheck

    torch.ops.load_library(sys.argv[1])
    # The Python registrations, loaded after the C++ autograd, must keep it.
    spec = importlib.util.spec_from_file_location("registrations", sys.argv[2])
    spec.loader.exec_module(importlib.util.module_from_spec(spec))

    ops = torch.ops.softhist
    x = (torch.randn(2, 30, dtype=torch.float64) * 1.5).requires_grad_()
    w = torch.rand(2, 30, dtype=torch.float64).requires_grad_()
    h = torch.randn(2, 7, dtype=torch.float64).requires_grad_()
    p = ops.params(x, 7, -2.0, 2.0, 2.0, "logistic")
    assert not p.requires_grad and p.grad_fn is None, "params must stay off the graph"

    names = {
        "scatter": ops.scatter(x, w, p, 7, 0, "logistic").grad_fn.name(),
        "gather": ops.gather(x, h, p, 0, "logistic").grad_fn.name(),
    }
    assert "ScatterFunction" in names["scatter"], names
    assert "GatherFunction" in names["gather"], names

    for kernel in ["logistic", "gaussian"]:
        p = ops.params(x, 7, -2.0, 2.0, 2.0, kernel)
        checks = [
            (lambda x, w: ops.scatter(x, w, p, 7, 0, kernel), (x, w)),
            (lambda x: ops.scatter(x, None, p, 7, 1, kernel), (x,)),
            (lambda x, h: ops.gather(x, h, p, 0, kernel), (x, h)),
        ]
        for f, args in checks:
            assert gradcheck(f, args), kernel
            assert gradgradcheck(f, args), kernel
    print("ok")
    """
)


def test_cpp_autograd_from_python(prefix):
    (library,) = prefix.glob("lib*/libsofthist_ext.so")
    registrations = ROOT / "softhist_ext" / "_registrations.py"
    out = _run([sys.executable, "-c", _CPP_AUTOGRAD_FROM_PYTHON, library, registrations])
    assert out.strip() == "ok"
