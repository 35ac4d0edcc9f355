"""Mutual information of two volumes: softhist_ext against MONAI's
GlobalMutualInformationLoss (gaussian and b-spline) and kornia's histogram2d,
forward+backward, as ratios measured in one process (the minimum and the
median over interleaved rounds), plus each method's peak memory (in a fresh
process).

    python bench/bench_mi.py              # 128^3 volume, 32 bins (the goal)
    python bench/bench_mi.py --size 64
    python bench/bench_mi.py --kept-pages # freed buffers reused (below)

Goal: >= 300x faster than MONAI's gaussian and b-spline windows at 128^3 with 32
bins, at <= 1/100 of their peak memory.

glibc's malloc maps every block of 32 MB or more afresh and unmaps it when
freed, so by default the dense peers' N x bins tensors (256 MB each here)
are page-faulted and zeroed by the kernel on every call. --kept-pages runs
the bench with glibc's malloc thresholds fixed (timing.keep_pages): freed
blocks are reused, and the times are computation alone. Peak memory is
measured in fresh processes either way.
"""

import argparse
import statistics
import subprocess
import sys

import torch

import softhist_ext
from peak_memory import FRESH_PAGES, warm_peak_mb
from timing import interleaved, keep_pages, machine, ratio

def volumes(size: int):
    gen = torch.Generator().manual_seed(0)
    fixed = torch.rand(1, 1, size, size, size, generator=gen)
    moving = (0.7 * fixed + 0.3 * torch.rand(fixed.shape, generator=gen)).clamp(0, 1)
    return fixed, moving


def make_methods(bins: int):
    def monai(kind):
        from monai.losses import GlobalMutualInformationLoss

        return GlobalMutualInformationLoss(kernel_type=kind, num_bins=bins)

    def kornia_mi(pred, target):
        from kornia.enhance import histogram2d

        centers = torch.linspace(0, 1, bins)
        joint = histogram2d(pred.flatten(1), target.flatten(1), centers, torch.tensor(0.5 / (bins - 1)))
        px, py = joint.sum(-1), joint.sum(-2)
        return -(joint * (joint / (px[..., None] * py[..., None, :]) + 1e-10).log()).sum()

    return {
        "softhist_ext (bspline)": softhist_ext.losses.MutualInformationLoss(bins=bins),
        "softhist_ext (gaussian)": softhist_ext.losses.MutualInformationLoss(bins=bins, kernel="gaussian"),
        "MONAI (gaussian)": lambda p, t: monai("gaussian")(p, t),
        "MONAI (b-spline)": lambda p, t: monai("b-spline")(p, t),
        "kornia histogram2d": kornia_mi,
    }


def run_once(loss_fn, fixed, moving):
    moving = moving.detach().requires_grad_()
    loss_fn(moving, fixed).backward()


def one(name, size, bins):
    """Peak memory (MB) one warm call adds; run in a fresh process."""
    fixed, moving = volumes(size)
    fn = make_methods(bins)[name]
    print(warm_peak_mb(lambda: run_once(fn, fixed, moving)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--bins", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--kept-pages", action="store_true",
                    help="reuse freed buffers (glibc's malloc thresholds fixed)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return one(args.one, args.size, args.bins)
    if args.kept_pages:
        keep_pages()

    fixed, moving = volumes(args.size)
    print(machine())
    print(f"{args.size}^3 volume, {args.bins} bins, forward+backward; min and median over "
          f"{args.rounds} interleaved rounds; freed buffers "
          + ("reused (--kept-pages)" if args.kept_pages else "as glibc's default thresholds leave them"))
    print(f"{'method':26s} {'min s':>9s} {'median s':>9s} {'peak MB':>9s}")
    cases = {}
    for name, fn in make_methods(args.bins).items():
        try:
            run_once(fn, fixed, moving)
        except ImportError as e:
            print(f"{name:26s} skipped: {e}")
            continue
        cases[name] = (lambda fn: lambda: run_once(fn, fixed, moving))(fn)
    times = interleaved(cases, args.rounds)
    mem = {}
    for name, t in times.items():
        out = subprocess.run([sys.executable, __file__, "--one", name, "--size", str(args.size),
                              "--bins", str(args.bins)], capture_output=True, text=True, env=FRESH_PAGES)
        mem[name] = float(out.stdout) if out.returncode == 0 else float("nan")
        print(f"{name:26s} {min(t):9.3f} {statistics.median(t):9.3f} {mem[name]:9.1f}")

    # The default (bspline) against every peer, and like for like: our
    # gaussian window against MONAI's, which has the same sigma.
    pairs = [("softhist_ext (bspline)", peer)
             for peer in ("MONAI (gaussian)", "MONAI (b-spline)", "kornia histogram2d")]
    pairs.append(("softhist_ext (gaussian)", "MONAI (gaussian)"))
    for ours, peer in pairs:
        if ours in times and peer in times:
            print(f"{ours} vs {peer}: {ratio(times, peer, ours)} faster, "
                  f"{mem[peer] / max(mem[ours], 0.1):.0f}x less peak memory")


if __name__ == "__main__":
    main()
