"""Interleaved timing for the benchmarks: every case once per round, so a
slow spell of a shared machine hits all cases alike; each ratio is reported
as the minimum over the rounds (the least disturbed) and the median."""

import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch


# glibc's malloc thresholds, fixed: freed blocks stay with the process. Left
# dynamic, they hand each call's 16 MB gradient back to the OS for stretches
# of rounds (each call then page-faults it afresh) and keep it for others,
# which moves a case's time by up to 2x from one stretch to the next.
KEPT_PAGES = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def keep_pages() -> None:
    """Runs this script afresh with KEPT_PAGES (once): bench_learnable, whose
    cases are all softhist_ext's, and bench_mi --kept-pages. Their ratios then
    compare computation alone."""
    if any(os.environ.get(k) != v for k, v in KEPT_PAGES.items()):
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **KEPT_PAGES})


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
