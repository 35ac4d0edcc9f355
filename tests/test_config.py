"""What an install says about itself (show_config), the error a CUDA tensor
gets without CUDA kernels, and the build's rule for the CUDA compiler."""

import importlib.util
import io
import re
from pathlib import Path

import pytest
import torch

import softhist_ext
from softhist_ext import _config

no_cuda_kernels = pytest.mark.skipif(
    _config.cuda_kernels_registered(), reason="this install has CUDA kernels")


def _shown() -> str:
    out = io.StringIO()
    softhist_ext.show_config(file=out)
    return out.getvalue()


def test_show_config_names_the_libraries():
    shown = _shown()
    assert f"softhist_ext {softhist_ext.__version__}" in shown
    assert f"torch {torch.__version__}" in shown
    cpu = re.search(r"^CPU library: (\S+) \(loaded\)$", shown, re.M)
    assert cpu and Path(cpu.group(1)).exists() and Path(cpu.group(1)).parent.samefile(
        Path(softhist_ext.__file__).parent)
    assert re.search(r"^CUDA library: ", shown, re.M)
    registered = "yes" if _config.cuda_kernels_registered() else "no"
    assert shown.rstrip().endswith(f"CUDA kernels registered: {registered}")


def test_show_config_gives_the_cuda_build(tmp_path, monkeypatch):
    # A CUDA library and its build record, as the build writes them.
    (tmp_path / "_C.abi3.so").touch()
    (tmp_path / "_C_cuda.abi3.so").touch()
    (tmp_path / "_C_cuda.json").write_text(
        '{"library": "_C_cuda.abi3.so", "cuda": "13.0", "nvcc": "/usr/local/cuda/bin/nvcc", '
        '"compiler": "local", "archs": ["sm_80", "sm_90", "compute_90"], "cudart": "static"}')
    monkeypatch.setattr(_config, "_HERE", tmp_path)
    shown = _shown()
    line = next(l for l in shown.splitlines() if l.startswith("CUDA library:"))
    assert str(tmp_path / "_C_cuda.abi3.so") in line and "(not loaded" in line
    assert "built with CUDA 13.0 (local nvcc: /usr/local/cuda/bin/nvcc)" in line
    assert "for sm_80, sm_90, compute_90, CUDA runtime linked static" in line


@no_cuda_kernels
def test_without_cuda_kernels_show_config_says_why():
    shown = _shown()
    assert "CUDA kernels registered: no" in shown
    if softhist_ext._libraries(Path(softhist_ext.__file__).parent, "_C_cuda"):
        # built (FORCE_CUDA=1, as CI does), and a CPU-only torch can't load it
        assert torch.version.cuda is None and "(not loaded: torch has no CUDA), built with CUDA" in shown
    else:
        assert "CUDA library: none in this install" in shown and "pip install -v ." in shown


@no_cuda_kernels
def test_a_device_without_kernels_gets_the_way_to_them():
    # Without CUDA kernels the dispatcher sends a CUDA tensor to the fallback
    # the CPU library registers for every other device; redispatching to it
    # is what a CUDA tensor would reach (its CUDA branch only names the device).
    assert not torch._C._dispatch_has_kernel_for_dispatch_key("softhist::scatter", "CUDA")
    keys = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)
    x = torch.zeros(4)
    p = torch.ops.softhist.params(x, 4, 0.0, 1.0, None, "logistic")
    with pytest.raises(RuntimeError, match=r"scatter got a tensor on .* CUDA kernels: reinstall "
                       r"on the machine with the GPU with `pip install -v \.`.*show_config\(\)"):
        torch.ops.softhist.scatter.default.redispatch(keys, [x], None, p[None], [4], [0], "logistic")


def _toolchain():
    path = Path(__file__).parents[1] / "csrc" / "build" / "softhist_build" / "cuda_toolchain.py"
    if not path.exists():
        pytest.skip("the tests run without the source tree")
    spec = importlib.util.spec_from_file_location("cuda_toolchain", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "env, driver, local, pip, expect",
    [
        # no GPU: nothing for CUDA, not even a download, unless FORCE_CUDA=1
        ({}, None, (13, 0), None, (None, "no GPU here")),
        ({"FORCE_CUDA": "1"}, None, (13, 0), None, ("local", "FORCE_CUDA=1")),
        ({"FORCE_CUDA": "1"}, None, None, None, ("wants pip", "not installed")),
        ({"FORCE_ONLY_CPU": "1"}, (13, 0), (13, 0), None, (None, "FORCE_ONLY_CPU=1")),
        # a local toolkit the driver runs, whatever the build's torch has
        ({}, (12, 8), (12, 4), None, ("local", "driver runs CUDA 12.8")),
        ({}, (13, 0), (12, 8), (13, 0), ("local", "driver runs CUDA 13.0")),
        # none, or one newer than the driver: pip's nvcc 13 where the driver runs it
        ({}, (13, 1), None, None, ("wants pip", "pip's CUDA 13 compiler is not installed")),
        ({}, (13, 0), None, (13, 0), ("pip", "driver runs CUDA 13.0")),
        # a CUDA 12 driver: pip has no CUDA 12 nvcc, and the build says so
        ({}, (12, 8), None, (13, 0), (None, "install a CUDA 12 toolkit")),
        ({}, (12, 8), (13, 0), None, (None, "newer than the driver")),
    ],
)
def test_the_cuda_compiler_suits_the_driver(monkeypatch, env, driver, local, pip, expect):
    tc = _toolchain()
    for name in ("FORCE_CUDA", "FORCE_ONLY_CPU", "SOFTHIST_SANITIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def toolkit(version, origin):
        return (lambda: tc.Toolkit(Path("/cuda"), version, origin)) if version else (lambda: None)

    plan = tc.plan(driver=lambda: driver, local=toolkit(local, "local"), pip=toolkit(pip, "pip"))
    origin, reason = expect
    if origin == "wants pip":
        assert plan.toolkit is None and plan.wants_pip
    elif origin is None:
        assert plan.toolkit is None and not plan.wants_pip
    else:
        assert plan.toolkit.origin == origin
    assert reason in plan.reason
    # FORCE_CUDA=1 fails the build where it can't be done, rather than skip the kernels
    assert plan.failed == (plan.toolkit is None and env.get("FORCE_CUDA") == "1")


@pytest.mark.parametrize("arch_list, expect", [
    (None, ["compute_80,code=sm_80", "compute_90,code=sm_90", "compute_90,code=compute_90"]),
    ("9.0", ["compute_90,code=sm_90"]),
    ("8.0;9.0+PTX", ["compute_80,code=sm_80", "compute_90,code=sm_90", "compute_90,code=compute_90"]),
    ("8.6 12.0a", ["compute_86,code=sm_86", "compute_120a,code=sm_120a"]),
    ("7.5", "8.0 or newer"),
    ("Hopper", "is not a compute capability"),
])
def test_torch_cuda_arch_list_picks_the_architectures(monkeypatch, arch_list, expect):
    tc = _toolchain()
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    if arch_list is not None:
        monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", arch_list)
    if isinstance(expect, str):
        with pytest.raises(ValueError, match=f"TORCH_CUDA_ARCH_LIST entry .*{expect}"):
            tc.gencode_flags()
    else:
        assert tc.gencode_flags() == [f"-gencode=arch={e}" for e in expect]
