"""Builds softhist_ext's kernels against the LibTorch stable ABI.

The binary calls only torch's stable C shim (target: torch 2.10), so it runs
with any torch >= 2.10, whichever torch the (isolated) build happened to use.
It uses no Python C API either, hence one abi3 wheel for every CPython >= 3.9.

The CUDA kernels are a second library, built where there is a GPU, with a
CUDA compiler its driver runs (a local toolkit, else pip's nvcc, which the
build backend asks for only then), whatever CUDA the build's torch has; the
CUDA runtime is linked statically (csrc/build/softhist_build/ has the rule and the build).
FORCE_CUDA=1 builds them without a GPU (e.g. for a wheel; CI does, to keep them compiling) and
fails where it can't, FORCE_ONLY_CPU=1 never.

The sources compile in parallel with ninja (MAX_JOBS limits the jobs; without
ninja, setuptools compiles one file at a time).

SOFTHIST_SANITIZE=1 builds the CPU library with AddressSanitizer and
UndefinedBehaviorSanitizer (any report aborts the process; debug info and
frame pointers for readable stacks) and no CUDA library: for testing, not
distribution, since Python must then run with the ASan runtime preloaded
(see .ci/sanitize).
"""

import os
import sys
from pathlib import Path

import torch
from setuptools import setup
from torch.utils import cpp_extension
from torch.utils.cpp_extension import BuildExtension, CppExtension

sys.path.insert(0, str(Path(__file__).parent / "csrc" / "build"))  # the build helpers
from softhist_build import cuda_build, cuda_toolchain  # noqa: E402

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
    "csrc/cpu/ops_cpu.cpp",
    # The engine, one file per dtype: the heaviest compile, split so that the
    # jobs run in parallel.
    *(f"csrc/cpu/engine_{dtype}.cpp" for dtype in ("float", "double", "half", "bfloat16")),
]
# Paths relative to the source tree, the build's working directory (as above).
cuda_sources = [Path("csrc/ops.cpp"), *sorted(Path("csrc/cuda").glob("*.cu"))]
cuda_headers = [Path(f"csrc/{h}") for h in ("kernels.h", "ops.h", "dispatch.h", "range.h")] + sorted(
    Path("csrc/cuda").glob("*.*h"))


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
        depends=["csrc/kernels.h", "csrc/range.h", "csrc/ops.h", "csrc/dispatch.h",
                 *sorted(str(h) for h in Path("csrc/cpu").glob("*.h"))],
        extra_compile_args=[*cpu_flags, STABLE_ABI_TARGET, *sanitizer_flags],
        extra_link_args=sanitizer_flags,
        py_limited_api=True,
    )
]
cuda_plan = cuda_toolchain.plan()
if cuda_plan.toolkit:
    print(f"softhist_ext: building the CUDA kernels with {cuda_plan.toolkit.describe()} for "
          f"{', '.join(cuda_toolchain.archs())}, CUDA runtime linked statically ({cuda_plan.reason})",
          file=sys.stderr)
elif not cuda_plan.failed:
    print(f"softhist_ext: not building the CUDA kernels: {cuda_plan.reason}", file=sys.stderr)


class BuildExt(BuildExtension.with_options(use_ninja=True)):
    """torch's BuildExtension for the CPU library, then the CUDA library with
    nvcc directly (csrc/build/softhist_build/cuda_build.py says why), beside it."""

    def run(self):
        # Here, not when setup.py is read: the build backend reads it before
        # pip installs the CUDA compiler the backend asks for.
        if cuda_plan.failed:
            sys.exit(f"softhist_ext: FORCE_CUDA=1, but no CUDA compiler to build with: {cuda_plan.reason}")
        super().run()
        if cuda_plan.toolkit:
            cpu_library = Path(self.get_ext_fullpath("softhist_ext._C"))
            output = cpu_library.with_name(cpu_library.name.replace("_C.", "_C_cuda.", 1))
            cuda_build.build(cuda_plan.toolkit, cuda_sources,
                             cuda_headers, output, Path(self.build_temp) / "cuda",
                             cpp_extension.include_paths(), cpp_extension.library_paths()[0])
            print(f"softhist_ext: built the CUDA library {output.resolve()}", file=sys.stderr)


setup(
    ext_modules=ext_modules,
    # ninja compiles the sources in parallel; BuildExtension falls back to one
    # at a time, with a warning, where ninja is not installed.
    cmdclass={"build_ext": BuildExt},
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
