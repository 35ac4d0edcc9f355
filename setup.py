"""Builds softhist_ext's kernels against the LibTorch stable ABI.

The binary calls only torch's stable C shim (target: torch 2.10), so it runs
with any torch >= 2.10, whichever torch the (isolated) build happened to use.
It uses no Python C API either, hence one abi3 wheel for every CPython >= 3.9.

The CUDA kernels are a second library, built only where they can run: the
build's torch has CUDA, nvcc's major version matches it and torch sees a GPU.
FORCE_CUDA=1 builds them regardless (e.g. for a wheel made on a machine
without a GPU, as CI does), FORCE_ONLY_CPU=1 never.

The sources compile in parallel with ninja (MAX_JOBS limits the jobs; without
ninja, setuptools compiles one file at a time).

SOFTHIST_SANITIZE=1 builds the CPU library with AddressSanitizer and
UndefinedBehaviorSanitizer (any report aborts the process; debug info and
frame pointers for readable stacks) and no CUDA library: for testing, not
distribution, since Python must then run with the ASan runtime preloaded
(see .ci/sanitize).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import torch
from setuptools import setup
from torch.utils import cpp_extension
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

ROOT = Path(__file__).parent
STABLE_ABI_TARGET = "-DTORCH_TARGET_VERSION=0x020a000000000000"  # torch 2.10
SANITIZE = os.environ.get("SOFTHIST_SANITIZE") == "1"
# Compile and link flags (the link pulls in the sanitizer runtimes). The bin
# index math casts doubles to integers: check those casts too. -fno-wrapv undoes
# Python's -fwrapv, under which signed overflow is defined and goes unreported.
sanitizer_flags = (
    ["-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
     "-fno-wrapv", "-fno-omit-frame-pointer", "-g"]
    if SANITIZE
    else []
)

cpu_sources = [
    "csrc/registration.cpp",
    "csrc/ops.cpp",
    "csrc/cpu/engine.cpp",
]
cuda_sources = ["csrc/ops.cpp"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "csrc/cuda").glob("*.cu")
)
cuda_headers = [str(p.relative_to(ROOT)) for p in (ROOT / "csrc/cuda").glob("*.*h")]
# Machine code for Ampere and Hopper, and PTX for newer GPUs.
cuda_archs = [
    "-gencode=arch=compute_80,code=sm_80",
    "-gencode=arch=compute_90,code=sm_90",
    "-gencode=arch=compute_90,code=compute_90",
]


def cuda_toolkit():
    """torch's CUDA_HOME if it holds the toolkit's headers, else /usr/local/cuda.
    (Without $CUDA_HOME torch guesses from the nvcc on PATH, which may be a
    wrapper script outside the toolkit.)"""
    for home in (cpp_extension.CUDA_HOME, "/usr/local/cuda"):
        if home and (Path(home) / "include" / "cuda_runtime.h").exists():
            return home
    return None


def nvcc_major(home):
    nvcc = Path(home) / "bin" / "nvcc"
    out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True)
    found = re.search(r"release (\d+)\.", out.stdout)
    return found.group(1) if found else None


def gpu_visible():
    """Whether torch sees a CUDA GPU here (no GPU, or a driver too old for the
    build's torch: no)."""
    try:
        return torch.cuda.is_available()
    except Exception:  # a broken driver install: treat as no GPU
        return False


def build_cuda(home):
    """Whether to build the CUDA library, and why (for the build log)."""
    if SANITIZE:
        return False, "SOFTHIST_SANITIZE=1 builds the CPU library only"
    if os.environ.get("FORCE_ONLY_CPU") == "1":
        return False, "FORCE_ONLY_CPU=1"
    if os.environ.get("FORCE_CUDA") == "1":
        return True, "FORCE_CUDA=1"
    if torch.version.cuda is None:
        return False, f"the build's torch {torch.__version__} has no CUDA"
    if home is None:
        return False, "no CUDA toolkit found (CUDA_HOME, nvcc, /usr/local/cuda)"
    if nvcc_major(home) != torch.version.cuda.split(".")[0]:
        return False, f"nvcc in {home} does not match torch's CUDA {torch.version.cuda}"
    if not gpu_visible():
        return False, "torch sees no GPU here (FORCE_CUDA=1 builds them anyway)"
    return True, f"torch {torch.__version__} sees a GPU"


# -fno-trapping-math: without it, on targets without AVX-512's masked lanes
# (AVX2, SSE), GCC keeps the kernels' selects (clamps, compact supports, masks)
# as branches and the window loops don't vectorise. Results are unchanged:
# nothing reads the floating-point exception flags.
# C++20, as CMakeLists.txt (torch >= 2.14's classic headers, which the C++
# autograd there includes, need it): one standard for every build.
cpu_flags = ["-O3", "-std=c++20", "-fopenmp-simd", "-fno-trapping-math"]

ext_modules = [
    CppExtension(
        "softhist_ext._C",
        cpu_sources,
        depends=["csrc/kernels.h", "csrc/range.h", "csrc/ops.h", "csrc/dispatch.h", "csrc/cpu/common.h"],
        extra_compile_args=[*cpu_flags, STABLE_ABI_TARGET, *sanitizer_flags],
        extra_link_args=sanitizer_flags,
        py_limited_api=True,
    )
]
toolkit = cuda_toolkit()
with_cuda, reason = build_cuda(toolkit)
print(f"softhist_ext: {'building' if with_cuda else 'not building'} the CUDA kernels: {reason}",
      file=sys.stderr)
if with_cuda:
    cpp_extension.CUDA_HOME = toolkit  # what CUDAExtension and BuildExtension build with
    common = ["-O3", "-std=c++20", STABLE_ABI_TARGET, "-DUSE_CUDA"]
    ext_modules.append(
        CUDAExtension(
            "softhist_ext._C_cuda",
            cuda_sources,
            depends=["csrc/kernels.h", "csrc/ops.h", "csrc/dispatch.h", *cuda_headers],
            extra_compile_args={
                "cxx": [*common, "-fvisibility=hidden"],
                "nvcc": [*common, "-Xcompiler=-fvisibility=hidden", *cuda_archs],
            },
            py_limited_api=True,
        )
    )

setup(
    ext_modules=ext_modules,
    # ninja compiles the sources in parallel; BuildExtension falls back to one
    # at a time, with a warning, where ninja is not installed.
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
