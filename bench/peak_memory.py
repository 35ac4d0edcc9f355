"""Peak resident memory of one warm call, for the benchmarks' child processes."""

import os

# Run children with this environment: large blocks (>= 64 KiB) then come from
# fresh pages and go back when freed, so a warm call's peak shows what it
# allocates, not what the allocator kept from the warm-up.
FRESH_PAGES = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}


def _status_kb(field):
    # VmHWM (peak RSS), unlike ru_maxrss, can be reset and is not inherited.
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def warm_peak_mb(call):
    """MB the second of two calls adds to the resident set at its peak."""
    call()  # warm-up: one-time allocations are not the method's
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak to the current RSS
    before = _status_kb("VmRSS")
    call()
    return (_status_kb("VmHWM") - before) / 1024
