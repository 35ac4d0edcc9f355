"""The build backend: setuptools', asking pip for the CUDA compiler
(nvidia-cuda-nvcc) only when this machine needs it, i.e. when it has a GPU
whose driver runs CUDA 13 (or FORCE_CUDA=1) and no local CUDA toolkit the
driver runs (cuda_toolchain.py). A CPU-only machine downloads nothing more.
"""

import sys

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (the other PEP 517 hooks)

from .cuda_toolchain import PIP_REQUIREMENTS, plan


def _cuda_requirements():
    found = plan()
    if not found.wants_pip:
        return []
    print(f"softhist_ext: asking for pip's CUDA compiler: {found.reason}", file=sys.stderr)
    return list(PIP_REQUIREMENTS)


def get_requires_for_build_wheel(config_settings=None):
    return _setuptools.get_requires_for_build_wheel(config_settings) + _cuda_requirements()


def get_requires_for_build_editable(config_settings=None):
    return _setuptools.get_requires_for_build_editable(config_settings) + _cuda_requirements()
