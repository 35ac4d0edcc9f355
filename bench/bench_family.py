"""Every kernel, and per-row histograms, as ratios measured in one process.

    python bench/bench_family.py

1. Each kernel's forward, and forward+backward at its default kappa and at
   kappa * width = 2, at N = 4e6 float32 and float64 samples, 256 bins, against
   torch.histc's forward on the same samples: the minimum (and median) of the
   ratio over interleaved rounds (--rounds, default 10).
2. Per-row histograms: B*C = 96 rows of 256x256 pixels, 256 bins (the job of
   kornia.enhance.image_histogram2d). Goal: per-row costs no more per sample
   than one flat histogram of the same samples. kornia builds a
   pixels x bins tensor, so it runs on 3 rows (one RGB image).
"""

import argparse

import torch

import softhist_ext
from softhist_ext.reference import default_kappa_width
from timing import interleaved, machine, ratio



def backward_of(fn, x):
    def run():
        xr = x.detach().requires_grad_()
        out = fn(xr)
        out.backward(torch.ones_like(out))
    return run


def one_d_cases(x: torch.Tensor) -> dict:
    """torch.histc's forward, and each kernel's forward and forward+backward
    at its default kappa and at kappa * width = 2, on the samples x."""
    def call(kernel, kw, backward):
        kappa = None if kw is None else kw * 256 / 8.0
        def run():
            xr = x.detach().requires_grad_(backward)
            out = softhist_ext.histc(xr, 256, -4.0, 4.0, kappa, kernel=kernel)
            if backward:
                out.backward(torch.ones_like(out))
        return run

    cases = {"torch.histc": lambda: torch.histc(x, 256, -4, 4)}
    for kernel in softhist_ext.KERNELS:
        cases[f"{kernel} forward"] = call(kernel, None, False)
        cases[f"{kernel} forward+backward"] = call(kernel, None, True)
        cases[f"{kernel} forward+backward, kw 2"] = call(kernel, 2.0, True)
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    print(machine())
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(4_000_000, generator=torch.Generator().manual_seed(0), dtype=dtype)
        times = interleaved(one_d_cases(x), args.rounds)
        print(f"\nN = 4e6 {dtype} randn samples, 256 bins over [-4, 4]: x torch.histc's forward "
              f"on the same samples ({min(times['torch.histc']) * 1e3:.1f} ms), "
              f"min (median) over {args.rounds} interleaved rounds")
        print(f"{'kernel':12s} {'default kw':>10s} {'forward':>15s} {'fwd+bwd':>15s} {'fwd+bwd, kw 2':>15s}")
        for kernel in softhist_ext.KERNELS:
            cells = [ratio(times, f"{kernel} {case}", "torch.histc")
                     for case in ("forward", "forward+backward", "forward+backward, kw 2")]
            print(f"{kernel:12s} {default_kappa_width(kernel):10g} " + " ".join(f"{c:>15s}" for c in cells))

    print("\nper-row: 96 rows of 256x256 pixels in [0, 1], 256 bins, forward+backward")
    img = torch.rand(96, 256 * 256)
    times = interleaved({
        "rows": backward_of(lambda x: softhist_ext.histc(x, 256, 0.0, 1.0, dim=-1), img),
        "flat": backward_of(lambda x: softhist_ext.histc(x, 256, 0.0, 1.0), img),
    }, args.rounds)
    print(f"dim=-1 (96, 256) / one flat (256,) histogram of the same samples: "
          f"{ratio(times, 'rows', 'flat')} (goal: <= 1)")

    try:
        import kornia
    except ImportError:
        print("kornia not installed: pip install kornia")
        return
    rgb = torch.rand(1, 3, 256, 256)
    times = interleaved({
        "kornia": backward_of(
            lambda x: kornia.enhance.image_histogram2d(x, 0.0, 1.0, 256, kernel="triangular")[0], rgb),
        "ours": backward_of(
            lambda x: softhist_ext.histc(x.flatten(2), 256, 0.0, 1.0, kernel="triangular", dim=-1), rgb),
    }, max(3, args.rounds // 3))
    print("\none RGB 256x256 image, triangular kernel, forward+backward: "
          f"kornia.enhance.image_histogram2d / softhist_ext.histc(dim=-1) = {ratio(times, 'kornia', 'ours')}")


if __name__ == "__main__":
    main()
