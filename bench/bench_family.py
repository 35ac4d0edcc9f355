"""Every kernel, and per-row histograms, as ratios measured in one process.

    python bench/bench_family.py

1. Each kernel's forward+backward at N = 4e6 float32 samples, 256 bins, default
   kappa, against torch.histc's forward.
2. Per-row histograms: B*C = 96 rows of 256x256 pixels, 256 bins (the job of
   kornia.enhance.image_histogram2d). Goal: per-row costs no more per sample
   than one flat histogram of the same samples. kornia builds a
   pixels x bins tensor, so it runs on 3 rows (one RGB image).
"""

import statistics
import time

import torch

import softhist_ext
from softhist_ext.reference import default_kappa_width



def seconds(fn, x, repeat=5, backward=True):
    def once():
        xr = x.detach().requires_grad_(backward)
        out = fn(xr)
        if backward:
            out.backward(torch.ones_like(out))

    once()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    x = torch.randn(4_000_000)
    base = seconds(lambda x: torch.histc(x, 256, -4, 4), x, backward=False)
    print(f"\nN = 4e6, 256 bins over [-4, 4]; torch.histc forward {base * 1e3:.2f} ms")
    print(f"{'kernel':12s} {'kappa*width':>11s} {'forward':>9s} {'fwd+bwd':>9s}  (x torch.histc forward)")
    for kernel in softhist_ext.KERNELS:
        fwd = seconds(lambda x: softhist_ext.histc(x, 256, -4, 4, kernel=kernel), x, backward=False)
        both = seconds(lambda x: softhist_ext.histc(x, 256, -4, 4, kernel=kernel), x)
        kw = default_kappa_width(kernel)
        print(f"{kernel:12s} {kw:11g} {fwd / base:9.2f} {both / base:9.2f}")

    print("\nper-row: 96 rows of 256x256 pixels in [0, 1], 256 bins, forward+backward")
    img = torch.rand(96, 256 * 256)
    rows = seconds(lambda x: softhist_ext.histc(x, 256, 0.0, 1.0, dim=-1), img)
    flat = seconds(lambda x: softhist_ext.histc(x, 256, 0.0, 1.0), img)
    n = img.numel()
    print(f"softhist_ext dim=-1 (96, 256)     {rows * 1e3:9.1f} ms  {rows / n * 1e9:6.2f} ns/sample")
    print(f"softhist_ext flat (256,)          {flat * 1e3:9.1f} ms  {flat / n * 1e9:6.2f} ns/sample")
    print(f"goal (per-row per-sample cost <= flat): {rows / flat:.2f}x, "
          f"{'met' if rows <= flat * 1.05 else 'NOT met'}")

    try:
        import kornia
    except ImportError:
        print("kornia not installed: pip install kornia")
        return
    rgb = torch.rand(1, 3, 256, 256)

    def kornia_rows(x):
        return kornia.enhance.image_histogram2d(x, 0.0, 1.0, 256, kernel="triangular")[0]

    def ours_rows(x):
        return softhist_ext.histc(x.flatten(2), 256, 0.0, 1.0, kernel="triangular", dim=-1)

    k = seconds(kornia_rows, rgb, repeat=3)
    o = seconds(ours_rows, rgb)
    print(f"\none RGB 256x256 image, triangular kernel, forward+backward:")
    print(f"kornia.enhance.image_histogram2d  {k * 1e3:9.1f} ms")
    print(f"softhist_ext.histc(dim=-1)        {o * 1e3:9.1f} ms   ({k / o:.0f}x faster)")


if __name__ == "__main__":
    main()
