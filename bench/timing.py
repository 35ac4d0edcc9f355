"""Interleaved timing for the benchmarks: every case once per round, so a
slow spell of a shared machine hits all cases alike; each ratio is reported
as the minimum over the rounds (the least disturbed) and the median.

On import, glibc's malloc keeps the memory it frees (fixed mmap and trim
thresholds): with its default, adaptive thresholds, a process went through
stretches where every call's tensors of megabytes (a gradient of 4e6 floats)
were returned to the OS and page-faulted afresh, which made a case's times,
minimum included, 1.6-1.9x those of other runs of the same command."""

import ctypes
import os
import platform
import statistics
import time
from typing import Callable, Dict, List

import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
try:
    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    _libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
except OSError:  # not glibc
    pass


def machine() -> str:
    """CPU model, the vector ISA torch dispatches to, threads and torch version."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    isa = torch.backends.cpu.get_cpu_capability()
    return (f"{model}, {isa}, {torch.get_num_threads()} threads of {os.cpu_count()} CPUs; "
            f"torch {torch.__version__}")


def interleaved(cases: Dict[str, Callable[[], object]], rounds: int = 10) -> Dict[str, List[float]]:
    """Seconds per call of each case, one call per case per round, after one
    warm-up call each."""
    for call in cases.values():
        call()
    times: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, call in cases.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times


def ratio(times: Dict[str, List[float]], case: str, peer: str) -> str:
    """case / peer as 'min (median)': the minima's ratio and the round-by-round
    ratios' median."""
    best = min(times[case]) / min(times[peer])
    typical = statistics.median(a / b for a, b in zip(times[case], times[peer]))
    return f"{best:.3g}x ({typical:.3g}x)"
