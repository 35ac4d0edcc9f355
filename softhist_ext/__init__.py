"""Differentiable histograms for PyTorch.

``softhist_ext.histc`` is a drop-in for ``torch.histc`` with a gradient, computed
by fused kernels registered as ``torch.ops.softhist.*`` (autograd, TorchScript
and torch.compile included).
"""

import sys
from pathlib import Path
from typing import List, Optional, Tuple

import torch

__version__ = "0.1.0"


def _libraries(folder: Path, stem: str) -> List[Path]:
    return sorted(folder.glob(f"{stem}.*so")) + sorted(folder.glob(f"{stem}.*pyd"))


def _installed_elsewhere(here: Path) -> Optional[Path]:
    """Another softhist_ext on sys.path that has its compiled library: the
    installed package, which this (source) folder shadows."""
    for entry in sys.path:
        other = Path(entry or ".").resolve() / "softhist_ext"
        if other != here.resolve() and _libraries(other, "_C"):
            return other
    return None


def _load_library() -> None:
    here = Path(__file__).parent
    found = _libraries(here, "_C")
    if not found:
        installed = _installed_elsewhere(here)
        if installed is not None:
            raise ImportError(
                f"softhist_ext: Python imported the source folder {here}, which has no compiled "
                f"library, instead of the installed package {installed}: the current directory "
                "comes first on sys.path. Run Python from another directory, or build the source "
                "folder in place with `pip install -e .`."
            )
        raise ImportError(
            f"softhist_ext: the compiled library _C is missing from {here}. "
            "Install the package with `pip install .` from its source tree "
            "(an in-place checkout needs `pip install -e .` or `python setup.py build_ext --inplace`)."
        )
    try:
        torch.ops.load_library(str(found[0]))
    except OSError as e:
        raise ImportError(
            f"softhist_ext: could not load {found[0]}: {e}. It needs torch >= 2.10 "
            f"(found {torch.__version__}); reinstall softhist_ext with `pip install .`."
        ) from e


def _load_cuda_library() -> None:
    # The CUDA kernels are a library of their own, loaded only when torch has
    # CUDA, so a CPU-only torch never loads it. It links the CUDA runtime
    # statically, so any CUDA build of torch >= 2.10 loads it. A build without
    # it says nothing here: show_config() says so, and the ops say how to get
    # the kernels when a CUDA tensor reaches them.
    if torch.version.cuda is None:
        return
    here = Path(__file__).parent
    found = _libraries(here, "_C_cuda")
    if not found:
        return
    try:
        torch.ops.load_library(str(found[0]))
    except OSError as e:
        raise ImportError(
            f"softhist_ext: could not load its CUDA kernels {found[0]}: {e}. They need "
            f"torch >= 2.10 (found {torch.__version__}); reinstall softhist_ext with "
            "`pip install -v .`, or without CUDA kernels with `FORCE_ONLY_CPU=1 pip install .`."
        ) from e


_load_library()
_load_cuda_library()

#: The smoothing kernels, as the compiled library defines them; "hard" (exact
#: counts) is the one other value ``kernel`` takes.
KERNELS: Tuple[str, ...] = tuple(torch.ops.softhist.kernels())

from . import _registrations  # noqa: E402,F401  (fake kernels and autograd)
from . import distributed, losses, nn  # noqa: E402
from .losses import mutual_information  # noqa: E402
from . import functional  # noqa: E402
from ._config import show_config  # noqa: E402
from .ops import bincount, histc, histc2d, histogram, histogramdd  # noqa: E402

__all__ = ["KERNELS", "bincount", "distributed", "functional", "histc", "histc2d", "histogram", "histogramdd", "losses", "mutual_information", "nn", "show_config"]
