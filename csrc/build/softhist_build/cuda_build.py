"""Compiles and links the CUDA library with nvcc directly.

Not through torch's CUDAExtension: that refuses an nvcc whose major version
differs from the build's torch (whose CUDA says nothing about the machine
the library will run on) and links libcudart dynamically. Here the runtime
is linked statically (-cudart=static), so the library needs no libcudart on
the library path, whatever CUDA the runtime torch was built for. The compile
flags are those CUDAExtension used.
"""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Sequence

from .cuda_toolchain import Toolkit, archs, gencode_flags

STABLE_ABI = ["-DTORCH_TARGET_VERSION=0x020a000000000000", "-DUSE_CUDA"]  # torch 2.10
TORCH_DEFINES = ["-DTORCH_API_INCLUDE_EXTENSION_H", "-DTORCH_EXTENSION_NAME=_C_cuda"]
NVCC_FLAGS = [
    "-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
    "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__",
    "--expt-relaxed-constexpr", "-Xcompiler=-fPIC",
    "-O3", "-std=c++20", *STABLE_ABI, "-Xcompiler=-fvisibility=hidden",
]
CXX_FLAGS = ["-fPIC", "-O3", "-std=c++20", *STABLE_ABI, "-fvisibility=hidden"]
# The stable shim's symbols (aoti_torch_*), the CUDA ones in torch_cuda.
TORCH_LIBS = ["c10", "torch", "torch_cpu", "c10_cuda", "torch_cuda"]


def _stale(obj: Path, source: Path, headers: Sequence[Path]) -> bool:
    if not obj.exists():
        return True
    newest = max([source.stat().st_mtime, *(h.stat().st_mtime for h in headers)])
    return obj.stat().st_mtime < newest


def build(toolkit: Toolkit, sources: Sequence[Path], headers: Sequence[Path], output: Path,
          temp: Path, torch_include: List[str], torch_libdir: str) -> None:
    """Builds `output` (the _C_cuda library) and, beside it, its build record
    _C_cuda.json, which show_config() reads."""
    includes = [f"-I{d}" for d in [*torch_include, toolkit.home / "include"]]
    nvcc = str(toolkit.nvcc)
    jobs = []
    for source in sources:
        obj = temp / source.with_suffix(".o")
        if not _stale(obj, source, headers):
            jobs.append((obj, None))
            continue
        obj.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".cu":
            command = [nvcc, *includes, "-c", str(source), "-o", str(obj), *NVCC_FLAGS,
                       *gencode_flags(), *TORCH_DEFINES]
        else:  # the host side (ops.cpp), compiled by nvcc's host compiler
            command = [nvcc, *includes, "-c", str(source), "-o", str(obj),
                       *(f"-Xcompiler={f}" if f.startswith("-f") else f for f in CXX_FLAGS),
                       *TORCH_DEFINES]
        jobs.append((obj, command))
    workers = int(os.environ.get("MAX_JOBS") or os.cpu_count() or 1)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for obj, command in jobs:
            if command:
                print(" ".join(command), file=sys.stderr)
        failed = [c for c, rc in zip(jobs, pool.map(_run, [c for _, c in jobs])) if rc]
    if failed:
        raise RuntimeError(f"softhist_ext: nvcc failed on {[str(o) for o, _ in failed]}")
    output.parent.mkdir(parents=True, exist_ok=True)
    link = [nvcc, "-shared", "-cudart=static", *(str(o) for o, _ in jobs), "-o", str(output),
            f"-L{torch_libdir}",
            *(f"-l{lib}" for lib in TORCH_LIBS if (Path(torch_libdir) / f"lib{lib}.so").exists()),
            # cudart's own symbols stay inside the library
            "-Xlinker=--exclude-libs,libcudart_static.a"]
    print(" ".join(link), file=sys.stderr)
    subprocess.run(link, check=True)
    record = {
        "library": output.name,
        "cuda": f"{toolkit.version[0]}.{toolkit.version[1]}",
        "nvcc": str(toolkit.nvcc),
        "compiler": toolkit.origin,
        "archs": archs(),
        "cudart": "static",
    }
    (output.parent / "_C_cuda.json").write_text(json.dumps(record, indent=1) + "\n")


def _run(command) -> int:
    return subprocess.run(command).returncode if command else 0
