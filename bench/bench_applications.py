"""equalize, equalize_clahe and match_histograms, forward+backward, against
kornia's differentiable CLAHE and the forum's dense soft-histogram matching,
as interleaved ratios in one process, plus each method's peak memory (in a
fresh process).

    python bench/bench_applications.py             # needs kornia: pip install ".[bench]"
    python bench/bench_applications.py --rounds 5  # quicker

The batch is 8 RGB images of 1024 x 1024 in [0, 1], 256 bins. The peers build
a pixels x bins tensor per image or tile, which does not fit this machine's
memory for that batch, so every method also runs on one 256 x 256 RGB image:
the ratios are like for like on it. Goal: CLAHE at least 100x faster than
kornia's equalize_clahe(slow_and_differentiable=True) at <= 1/20 of its memory.
"""

import argparse
import statistics
import subprocess
import sys
from typing import Callable, Dict

import torch

import softhist_ext
from softhist_ext import functional as F
from peak_memory import FRESH_PAGES, warm_peak_mb
from timing import interleaved, machine, ratio

BINS = 256


def images(batch: int, size: int) -> torch.Tensor:
    """Smooth random RGB images in [0, 1] (blurred noise: a photo's range of
    levels and gradients, without shipping one)."""
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(batch, 3, size // 8, size // 8, generator=gen)
    return torch.nn.functional.interpolate(noise, size=(size, size), mode="bicubic").clamp(0, 1)


def dense_match(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The forum's differentiable matching, per image and channel: sigmoid
    soft histograms (pixels x bins), each pixel's CDF value through the same
    pixels x bins memberships, then the reference's inverse CDF."""
    delta = 1.0 / BINS
    centres = (torch.arange(BINS, dtype=source.dtype) + 0.5) * delta
    sigma = 4 / delta
    out = []
    for s, r in zip(source.flatten(0, 1).flatten(1), reference.flatten(0, 1).flatten(1)):
        def membership(v):
            d = v[:, None] - centres
            return torch.sigmoid(sigma * (d + delta / 2)) - torch.sigmoid(sigma * (d - delta / 2))

        cdf_s = membership(s).sum(0).cumsum(0) / s.numel()
        cdf_r = membership(r).sum(0).cumsum(0) / r.numel()
        u = membership(s) @ cdf_s
        j = torch.searchsorted(cdf_r.detach(), u.detach()).clamp(1, BINS - 1)
        q0, q1 = cdf_r[j - 1], cdf_r[j]
        t = ((u - q0) / (q1 - q0).clamp_min(1e-12)).clamp(0, 1)
        out.append(centres[j - 1] + t * delta)
    return torch.stack(out).view_as(source)


def methods(batch: int, size: int) -> Dict[str, Callable[[], None]]:
    """Forward+backward calls on fresh leaves, by name."""
    image = images(batch, size)
    target = images(batch, size).flip(-1) ** 2

    def backward_of(fn):
        def call():
            x = image.detach().requires_grad_()
            fn(x).sum().backward()
        return call

    def kornia_clahe(x):
        from kornia.enhance import equalize_clahe

        return equalize_clahe(x, 40.0, (8, 8), slow_and_differentiable=True)

    return {
        "softhist_ext equalize": backward_of(lambda x: F.equalize(x, BINS, 0.0, 1.0)),
        "softhist_ext equalize_clahe": backward_of(lambda x: F.equalize_clahe(x, 40.0, (8, 8), BINS, 0.0, 1.0)),
        "softhist_ext match_histograms": backward_of(lambda x: F.match_histograms(x, target, BINS, 0.0, 1.0)),
        "kornia equalize_clahe (differentiable)": backward_of(kornia_clahe),
        "forum dense matching": backward_of(lambda x: dense_match(x, target)),
    }


OURS = ("softhist_ext equalize", "softhist_ext equalize_clahe", "softhist_ext match_histograms")
PEERS = {"softhist_ext equalize_clahe": "kornia equalize_clahe (differentiable)",
         "softhist_ext match_histograms": "forum dense matching"}


def peak_mb(name: str, batch: int, size: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--one", name, "--batch", str(batch), "--size", str(size)],
                         capture_output=True, text=True, env=FRESH_PAGES)
    return float(out.stdout) if out.returncode == 0 else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=8, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=1024, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(warm_peak_mb(methods(args.batch, args.size)[args.one]))
        return
    print(machine())
    print(f"forward+backward, {BINS} bins; min and median over {args.rounds} interleaved rounds\n")

    small = methods(1, 256)
    times = interleaved(small, args.rounds)
    print("one 256 x 256 RGB image:")
    print(f"{'method':40s} {'min ms':>9s} {'median ms':>10s} {'peak MB':>9s}")
    mem = {name: peak_mb(name, 1, 256) for name in small}
    for name, t in times.items():
        print(f"{name:40s} {min(t) * 1e3:9.1f} {statistics.median(t) * 1e3:10.1f} {mem[name]:9.1f}")
    for ours, peer in PEERS.items():
        print(f"{peer} / {ours}: {ratio(times, peer, ours)} the time, "
              f"{mem[peer] / max(mem[ours], 0.1):.0f}x the peak memory")

    big = {name: fn for name, fn in methods(args.batch, args.size).items() if name in OURS}
    times = interleaved(big, args.rounds)
    print(f"\n{args.batch} RGB images of {args.size} x {args.size}:")
    print(f"{'method':40s} {'min s':>9s} {'median s':>10s} {'ns/pixel':>9s} {'peak MB':>9s}")
    pixels = args.batch * 3 * args.size * args.size
    for name, t in times.items():
        median = statistics.median(t)
        print(f"{name:40s} {min(t):9.3f} {median:10.3f} {min(t) / pixels * 1e9:9.1f} "
              f"{peak_mb(name, args.batch, args.size):9.1f}")


if __name__ == "__main__":
    main()
