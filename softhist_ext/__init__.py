"""Differentiable histograms for PyTorch.

``softhist_ext.histc`` is a drop-in for ``torch.histc`` with a gradient, computed
by fused kernels registered as ``torch.ops.softhist.*`` (autograd, TorchScript
and torch.compile included).
"""

from pathlib import Path

import torch

__version__ = "0.1.0"


def _load_library() -> None:
    here = Path(__file__).parent
    found = sorted(here.glob("_C*.so")) + sorted(here.glob("_C*.pyd"))
    if not found:
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


_load_library()

from . import _registrations  # noqa: E402,F401  (fake kernels and autograd)
from . import distributed, losses, nn  # noqa: E402
from .losses import mutual_information  # noqa: E402
from .ops import bincount, histc, histc2d  # noqa: E402

__all__ = ["bincount", "distributed", "histc", "histc2d", "losses", "mutual_information", "nn"]
