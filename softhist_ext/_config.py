"""show_config(): what this install has, in the spirit of torch.__config__.show()."""

import json
import sys
from pathlib import Path
from typing import List, Optional, TextIO

import torch

from . import _libraries

_HERE = Path(__file__).parent


def cuda_kernels_registered() -> bool:
    """Whether the dispatcher has CUDA kernels of the ops (the CUDA library
    registers them when it loads; the CPU library only a fallback that
    raises)."""
    return all(torch._C._dispatch_has_kernel_for_dispatch_key(f"softhist::{op}", "CUDA")
               for op in ("params", "scatter", "gather"))


def _library(stem: str) -> Optional[Path]:
    found = _libraries(_HERE, stem)
    return found[0] if found else None


def _loaded(path: Path) -> bool:
    return any(Path(p).resolve() == path.resolve() for p in torch.ops.loaded_libraries)


def _cuda_build() -> str:
    """How the CUDA library was built, from the record the build wrote beside it."""
    try:
        record = json.loads((_HERE / "_C_cuda.json").read_text())
    except (OSError, ValueError):
        return "no build record"
    return (f"built with CUDA {record['cuda']} ({record['compiler']} nvcc: {record['nvcc']}) "
            f"for {', '.join(record['archs'])}, CUDA runtime linked {record['cudart']}")


def describe() -> str:
    lines: List[str] = [
        f"softhist_ext {sys.modules['softhist_ext'].__version__} ({_HERE})",
        f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none'})",
    ]
    cpu = _library("_C")
    lines.append(f"CPU library: {cpu} ({'loaded' if cpu and _loaded(cpu) else 'not loaded'})")
    cuda = _library("_C_cuda")
    if cuda is None:
        lines.append("CUDA library: none in this install (it is built on a machine with a GPU, "
                     "or with FORCE_CUDA=1; `pip install -v .` logs why it was not)")
    else:
        state = ("loaded" if _loaded(cuda)
                 else "not loaded: torch has no CUDA" if torch.version.cuda is None
                 else "not loaded")
        lines.append(f"CUDA library: {cuda} ({state}), {_cuda_build()}")
    lines.append(f"CUDA kernels registered: {'yes' if cuda_kernels_registered() else 'no'}")
    return "\n".join(lines)


def show_config(file: Optional[TextIO] = None) -> None:
    """Prints the libraries found and loaded, the CUDA version and GPU
    architectures the CUDA library was built for, and whether the dispatcher
    has the CUDA kernels, to file (default sys.stdout)."""
    print(describe(), file=file or sys.stdout)
