"""Builds softhist_ext's kernels against the LibTorch stable ABI.

The binary calls only torch's stable C shim (target: torch 2.10), so it runs
with any torch >= 2.10, whichever torch the (isolated) build happened to use.
It uses no Python C API either, hence one abi3 wheel for every CPython >= 3.9.
"""

from pathlib import Path

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

ROOT = Path(__file__).parent
STABLE_ABI_TARGET = "-DTORCH_TARGET_VERSION=0x020a000000000000"  # torch 2.10

cpu_sources = ["csrc/ops.cpp", "csrc/cpu/softhist_cpu.cpp", "csrc/cpu/softhist2d_cpu.cpp"]

setup(
    ext_modules=[
        CppExtension(
            "softhist_ext._C",
            cpu_sources,
            depends=["csrc/kernels.h", "csrc/ops.h", "csrc/cpu/common.h"],
            extra_compile_args=["-O3", "-std=c++17", "-fopenmp-simd", STABLE_ABI_TARGET],
            py_limited_api=True,
        )
    ],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=False)},
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
