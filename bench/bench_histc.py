"""softhist_ext.histc against torch.histc and the N x bins recipes, as ratios
measured in one process, plus each method's peak memory (in a fresh process).

    python bench/bench_histc.py            # the goal: N=4e6, 256 bins, kappa*width=8
    python bench/bench_histc.py --kw 2 30  # other kernel widths

The recipes people use instead (the forum's SoftHistogram and GaussianHistogram,
kornia.enhance.histogram) build an N x bins tensor, so they run at --peer-n.
"""

import argparse
import statistics
import subprocess
import sys
import time

import torch

import softhist_ext
from softhist_ext import reference
from peak_memory import FRESH_PAGES

LO, HI = -4.0, 4.0


def make_methods(bins, kappa):
    width = (HI - LO) / bins
    centers = torch.linspace(LO + width / 2, HI - width / 2, bins)

    def kornia_histogram(x):
        import kornia

        return kornia.enhance.histogram(x[None], centers, torch.tensor(1.0 / kappa))

    return {
        "torch.histc (forward, no grad)": (lambda x: torch.histc(x, bins, LO, HI), False),
        "softhist_ext.histc forward": (lambda x: softhist_ext.histc(x, bins, LO, HI, kappa), False),
        "softhist_ext.histc forward+backward": (
            lambda x: softhist_ext.histc(x, bins, LO, HI, kappa), True),
        "forum SoftHistogram forward+backward": (
            lambda x: reference.forum_soft_histogram(x, bins, LO, HI, kappa), True),
        "forum GaussianHistogram forward+backward": (
            lambda x: reference.forum_gaussian_histogram(x, bins, LO, HI, 1.0 / kappa), True),
        "kornia.enhance.histogram forward+backward": (kornia_histogram, True),
    }


def run_once(fn, backward, x):
    if backward:
        x = x.detach().requires_grad_()
        out = fn(x)
        out.backward(torch.ones_like(out))
    else:
        with torch.no_grad():
            fn(x)


def seconds(fn, backward, x, repeat):
    run_once(fn, backward, x)  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run_once(fn, backward, x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_memory_mb(name, n, bins, kappa):
    """Peak resident memory added by one (warm) call, in a fresh process."""
    code = (
        "import sys, torch; sys.path.insert(0, 'bench'); import bench_histc as b\n"
        "from peak_memory import warm_peak_mb\n"
        f"x = torch.randn({n}); fn, bw = b.make_methods({bins}, {kappa})[{name!r}]\n"
        "print(warm_peak_mb(lambda: b.run_once(fn, bw, x)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=FRESH_PAGES)
    return float(out.stdout) if out.returncode == 0 else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=4_000_000)
    ap.add_argument("--peer-n", type=int, default=250_000)
    ap.add_argument("--bins", type=int, default=256)
    ap.add_argument("--kw", type=float, nargs="+", default=[8.0], help="kappa * bin width")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.bins} bins over [{LO}, {HI}], float32 randn samples")

    for kw in args.kw:
        kappa = kw * args.bins / (HI - LO)
        methods = make_methods(args.bins, kappa)
        print(f"\nkappa * width = {kw:g} (kappa = {kappa:g})")
        print(f"{'method':44s} {'N':>9s} {'ms':>9s} {'ns/sample':>9s} {'x histc':>8s} {'peak MB':>8s}")
        for n in (args.n, args.peer_n):
            x = torch.randn(n)
            base = seconds(*methods["torch.histc (forward, no grad)"], x, args.repeat)
            for name, (fn, bw) in methods.items():
                recipe = not name.startswith(("torch", "softhist"))
                if recipe and n == args.n:
                    continue
                t = base if name.startswith("torch") else seconds(fn, bw, x, args.repeat if not recipe else 3)
                mem = float("nan") if args.no_memory else peak_memory_mb(name, n, args.bins, kappa)
                print(f"{name:44s} {n:9d} {t * 1e3:9.2f} {t / n * 1e9:9.2f} {t / base:8.2f} {mem:8.1f}")
                if n == args.n and name.endswith("forward+backward"):
                    goal = "met" if t / base <= 4 else "NOT met"
                    ratio = t / base
        print(f"goal (N={args.n}, forward+backward within 4x torch.histc forward): "
              f"{ratio:.2f}x, {goal}")


if __name__ == "__main__":
    main()
