"""Which CUDA compiler builds the CUDA library, and for what.

Used by setup.py and, before anything is installed, by the build backend
(backend.py), which asks pip for the CUDA compiler when the machine needs it:
hence the standard library only (no torch).

The CUDA library links the CUDA runtime statically and reaches torch only
through the stable C shim, so it depends on neither torch's CUDA version nor
a CUDA runtime on the library path: it needs a driver that runs the CUDA
version it was compiled with. Hence the rule:

- a local toolkit (CUDA >= 12: CUDA_HOME, CUDA_PATH, nvcc on PATH,
  /usr/local/cuda) whose major version the driver runs;
- else pip's nvcc (the newest 13.x), when the driver runs CUDA 13 (or there
  is no driver and FORCE_CUDA=1). Only CUDA 13 has one on pip: the Linux wheels of
  nvidia-cuda-nvcc-cu12 (12.1 to 12.9) hold ptxas and libnvvm but no nvcc,
  so a driver that stops at CUDA 12 needs a local CUDA 12 toolkit;
- no GPU (no libcuda reporting a device): no CUDA library, unless FORCE_CUDA=1,
  so a CPU-only install downloads and compiles nothing for CUDA.
"""

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

MIN_MAJOR = 12
# The newest CUDA 13.x: a driver that runs CUDA 13 (R580+) runs any 13.x
# runtime (minor-version compatibility). Not pinned to a minor: nvcc's own
# dependencies (runtime headers, libcudart_static, crt, nvvm) resolve to the
# newest, and nvcc must match its headers' major.minor; a pin here would not
# reach them (pip drops a requirement the build's torch already satisfies,
# e.g. its nvidia-cuda-runtime, then installs nvcc's dependencies afresh).
PIP_MAJOR = 13
PIP_REQUIREMENTS = [f"nvidia-cuda-{part}>={PIP_MAJOR},<{PIP_MAJOR + 1}" for part in ("nvcc", "cccl")]
# Machine code for Ampere and Hopper, and PTX for newer GPUs.
ARCHS = ["sm_80", "sm_90", "compute_90"]


def archs() -> List[str]:
    """ARCHS, or those of TORCH_CUDA_ARCH_LIST as torch's extensions read it
    ("8.0;9.0+PTX": machine code for each, and PTX for those marked +PTX):
    building only the GPU at hand takes a third of the time. Compute
    capability 8.0 (Ampere) at the oldest: the kernels' warp reductions need it."""
    text = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if not text:
        return ARCHS
    out = []
    for entry in text.replace(" ", ";").split(";"):
        if not entry:
            continue
        match = re.fullmatch(r"(\d+)\.(\d)([af]?)(\+PTX)?", entry)
        if not match or int(match[1]) < 8:
            raise ValueError(f"softhist_ext: TORCH_CUDA_ARCH_LIST entry {entry!r} is not a compute "
                             "capability of 8.0 or newer (e.g. \"8.6;9.0+PTX\"); the CUDA kernels "
                             "need Ampere or newer")
        number = f"{match[1]}{match[2]}{match[3]}"
        out.append(f"sm_{number}")
        if match[4]:
            out.append(f"compute_{number}")
    return out


class Toolkit(NamedTuple):
    home: Path  # holds bin/nvcc, include/cuda_runtime.h and lib*/libcudart_static.a
    version: Tuple[int, int]
    origin: str  # "local" or "pip"

    @property
    def nvcc(self) -> Path:
        return self.home / "bin" / "nvcc"

    @property
    def libdir(self) -> Path:
        return next(d for d in (self.home / "lib64", self.home / "lib")
                    if (d / "libcudart_static.a").exists())

    def describe(self) -> str:
        return f"nvcc {self.version[0]}.{self.version[1]} ({self.origin}: {self.nvcc})"


class Plan(NamedTuple):
    toolkit: Optional[Toolkit]  # None: build no CUDA library
    reason: str
    wants_pip: bool = False  # pip's nvcc would do, and is not installed
    failed: bool = False  # FORCE_CUDA=1, and no compiler to build with


def driver_version() -> Optional[Tuple[int, int]]:
    """The CUDA version the driver runs, where it sees a GPU; else None.
    Asked of libcuda itself (what nvidia-smi reports too), not of torch: the
    build's torch may be built for a CUDA the driver doesn't run."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        version, count = ctypes.c_int(), ctypes.c_int()
        if cuda.cuInit(0) != 0 or cuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
        if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
            return None
    except (OSError, AttributeError):
        return None
    return version.value // 1000, version.value % 1000 // 10


def nvcc_version(nvcc: Path) -> Optional[Tuple[int, int]]:
    try:
        out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True).stdout
    except OSError:
        return None
    found = re.search(r"release (\d+)\.(\d+)", out)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _toolkit(home: Path, origin: str) -> Optional[Toolkit]:
    if not ((home / "bin" / "nvcc").exists() and (home / "include" / "cuda_runtime.h").exists()
            and any((home / d / "libcudart_static.a").exists() for d in ("lib64", "lib"))):
        return None
    version = nvcc_version(home / "bin" / "nvcc")
    return Toolkit(home, version, origin) if version and version[0] >= MIN_MAJOR else None


def local_toolkit() -> Optional[Toolkit]:
    homes = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:  # a wrapper script on PATH may live outside the toolkit
        homes.append(str(Path(nvcc).resolve().parent.parent))
    homes.append("/usr/local/cuda")
    for home in filter(None, homes):
        found = _toolkit(Path(home), "local")
        if found:
            return found
    return None


def pip_toolkit() -> Optional[Toolkit]:
    """The nvcc pip installed (nvidia-cuda-nvcc: site-packages/nvidia/cu13)."""
    for entry in sys.path:
        found = _toolkit(Path(entry or ".") / "nvidia" / f"cu{PIP_MAJOR}", "pip")
        if found:
            return found
    return None


def plan(driver=driver_version, local=local_toolkit, pip=pip_toolkit) -> Plan:
    """What to build the CUDA library with, and why (for the build log)."""
    if os.environ.get("SOFTHIST_SANITIZE") == "1":
        return Plan(None, "SOFTHIST_SANITIZE=1 builds the CPU library only")
    if os.environ.get("FORCE_ONLY_CPU") == "1":
        return Plan(None, "FORCE_ONLY_CPU=1")
    force = os.environ.get("FORCE_CUDA") == "1"
    runs = driver()
    if runs is None and not force:
        return Plan(None, "no GPU here (libcuda reports none); FORCE_CUDA=1 builds them anyway")
    for_what = "FORCE_CUDA=1, no GPU here" if runs is None else f"the driver runs CUDA {runs[0]}.{runs[1]}"
    found = local()
    if found and (runs is None or runs[0] >= found.version[0]):
        return Plan(found, for_what)
    newer = f"; the local {found.describe()} is newer than the driver" if found else ""
    if runs is None or runs[0] >= PIP_MAJOR:
        found = pip()
        if found:
            return Plan(found, for_what + newer)
        return Plan(None, f"{for_what}{newer}, and pip's CUDA {PIP_MAJOR} compiler is not installed "
                    f"(pip install {' '.join(repr(r) for r in PIP_REQUIREMENTS)}, or build "
                    "with build isolation, which installs it)", wants_pip=True, failed=force)
    return Plan(None, f"{for_what}{newer or ', and there is no local CUDA toolkit >= 12'}; pip has "
                "no CUDA 12 nvcc (nvidia-cuda-nvcc-cu12 holds only ptxas): install a CUDA "
                f"{runs[0]} toolkit and set CUDA_HOME, or update the driver to run CUDA {PIP_MAJOR}",
                failed=force)


def gencode_flags() -> List[str]:
    flags = []
    for arch in archs():
        number = arch.split("_")[1]
        flags.append(f"-gencode=arch=compute_{number},code={arch}")
    return flags
