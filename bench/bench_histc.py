"""softhist_ext.histc against torch.histc and the N x bins recipes, as ratios
measured in one process, plus each method's peak memory (in a fresh process).

    python bench/bench_histc.py            # the goal: N=4e6, 256 bins, kappa*width=8
    python bench/bench_histc.py --kw 2 30  # other kernel widths

The recipes people use instead (the forum's SoftHistogram and GaussianHistogram,
kornia.enhance.histogram) build an N x bins tensor, so they run at --peer-n.
Each ratio to torch.histc is the minimum (and median) over interleaved rounds.
"""

import argparse
import statistics
import subprocess
import sys

import torch

import softhist_ext
from softhist_ext import reference
from peak_memory import FRESH_PAGES
from timing import interleaved, machine, ratio

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


def call(fn, backward, x):
    return lambda: run_once(fn, backward, x)


def table(methods, names, n, rounds, bins, kappa, memory):
    """Interleaved rounds of torch.histc and the named methods on N samples."""
    x = torch.randn(n, generator=torch.Generator().manual_seed(0))
    base = "torch.histc (forward, no grad)"
    times = interleaved({name: call(*methods[name], x) for name in [base, *names]}, rounds)
    for name, t in times.items():
        mem = peak_memory_mb(name, n, bins, kappa) if memory else float("nan")
        print(f"{name:44s} {n:9d} {min(t) * 1e3:9.2f} {statistics.median(t) * 1e3:9.2f} "
              f"{min(t) / n * 1e9:9.2f} {ratio(times, name, base):>16s} {mem:8.1f}")
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=4_000_000)
    ap.add_argument("--peer-n", type=int, default=250_000)
    ap.add_argument("--bins", type=int, default=256)
    ap.add_argument("--kw", type=float, nargs="+", default=[8.0], help="kappa * bin width")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()
    print(machine())
    print(f"{args.bins} bins over [{LO}, {HI}], float32 randn samples; min and median over "
          f"{args.rounds} interleaved rounds (the recipes: {max(3, args.rounds // 3)})")

    for kw in args.kw:
        kappa = kw * args.bins / (HI - LO)
        methods = make_methods(args.bins, kappa)
        ours = [name for name in methods if name.startswith("softhist")]
        recipes = [name for name in methods if not name.startswith(("torch", "softhist"))]
        print(f"\nkappa * width = {kw:g} (kappa = {kappa:g})")
        print(f"{'method':44s} {'N':>9s} {'min ms':>9s} {'median ms':>9s} {'ns/sample':>9s} "
              f"{'x histc':>16s} {'peak MB':>8s}")
        times = table(methods, ours, args.n, args.rounds, args.bins, kappa, not args.no_memory)
        table(methods, ours + recipes, args.peer_n, max(3, args.rounds // 3), args.bins, kappa,
              not args.no_memory)
        both = ratio(times, "softhist_ext.histc forward+backward", "torch.histc (forward, no grad)")
        print(f"goal (N={args.n}, forward+backward within 4x torch.histc forward): {both}")


if __name__ == "__main__":
    main()
