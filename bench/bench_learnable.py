"""Learnable bins, as ratios measured in one process.

    python bench/bench_learnable.py

At N = 4e6 float32 randn samples and 256 bins over [-4, 4], forward+backward
(the samples' gradient, an upstream gradient of ones), each kernel at its
default kappa, the minimum (and median) over interleaved rounds (--rounds,
default 10) of:
1. explicit even edges (a tensor of 257 edges) / int bins. Goal: <= 1.2x.
2. random uneven edges (widths up to 10x apart) / int bins. Goal: <= 2x.
3. with the gradients with respect to the edges and kappa too / without
   them, over the explicit edges; and with those with respect to min, max
   and kappa / without them, over int bins. Goal: <= 1.5x.
   Also, for samples that need no gradient (learning the bins of fixed
   features): forward+backward for the edges and kappa / the forward alone
   (no goal).
It runs itself with glibc's malloc thresholds fixed (timing.keep_pages), so
that page faults do not come and go between rounds.
4. joint histograms (histogramdd, 2 axes), N = 1e6 randn pairs, 32 x 32
   uneven bins over [-4, 4]^2: forward+backward with the gradients with
   respect to both axes' edges too / without them (no goal; the edges of each
   axis take one more joint scatter, with that axis at its edges).
"""

import argparse

import torch

import softhist_ext
from timing import interleaved, keep_pages, machine, ratio


def fwd_bwd(x, bins, kernel, learn, kappa=None, x_grad=True):
    """histogram's forward and backward; learn: the bins (and kappa) get
    gradients too; x_grad: the samples get theirs."""
    def run():
        xr = x.detach().requires_grad_(x_grad)
        k = kappa.detach().requires_grad_(learn) if kappa is not None else None
        if isinstance(bins, torch.Tensor):
            hist = softhist_ext.histogram(xr, bins.detach().requires_grad_(learn), kappa=k,
                                          kernel=kernel).hist
        elif learn:
            lo = torch.tensor(-4.0, requires_grad=True)
            hi = torch.tensor(4.0, requires_grad=True)
            hist = softhist_ext.histc(xr, bins, lo, hi, k, kernel=kernel)
        else:
            hist = softhist_ext.histc(xr, bins, -4.0, 4.0, kernel=kernel)
        hist.backward(torch.ones_like(hist))
    return run


def forward(x, bins, kernel):
    """histogram's forward alone."""
    def run():
        with torch.no_grad():
            softhist_ext.histogram(x, bins, kernel=kernel)
    return run


def joint_fwd_bwd(xy, edges, kernel, learn):
    """histogramdd's forward and backward (2 axes); learn: the edges get
    gradients too."""
    def run():
        xr = xy.detach().requires_grad_()
        es = [e.detach().requires_grad_(learn) for e in edges]
        hist = softhist_ext.histogramdd(xr, es, kernel=kernel).hist
        hist.backward(torch.ones_like(hist))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--kernels", nargs="+", default=list(softhist_ext.KERNELS))
    args = parser.parse_args()
    keep_pages()
    torch.manual_seed(0)
    x = torch.randn(4_000_000)
    even = torch.linspace(-4.0, 4.0, 257)
    widths = torch.rand(256) * 9 + 1
    uneven = -4.0 + 8.0 * torch.cat([torch.zeros(1), widths.cumsum(0)]) / widths.sum()
    print(machine())
    print(f"N = 4e6 float32, 256 bins over [-4, 4], forward+backward, {args.rounds} rounds: "
          "min (median)")
    for kernel in args.kernels:
        default = torch.ops.softhist.params(x[:1], 256, -4.0, 4.0, None, kernel)[2].float()
        cases = {
            "int": fwd_bwd(x, 256, kernel, False),
            "even": fwd_bwd(x, even, kernel, False),
            "uneven": fwd_bwd(x, uneven, kernel, False),
            "even+grads": fwd_bwd(x, even, kernel, True, default),
            "int+grads": fwd_bwd(x, 256, kernel, True, default),
            "fixed+grads": fwd_bwd(x, even, kernel, True, default, x_grad=False),
            "forward": forward(x, even, kernel),
        }
        t = interleaved(cases, args.rounds)
        print(f"{kernel:10s} explicit even / int {ratio(t, 'even', 'int')}, "
              f"uneven / int {ratio(t, 'uneven', 'int')}, "
              f"edges+kappa grads {ratio(t, 'even+grads', 'even')}, "
              f"min+max+kappa grads {ratio(t, 'int+grads', 'int')}, "
              f"fixed samples: edges+kappa grads / forward {ratio(t, 'fixed+grads', 'forward')}")
    xy = torch.randn(1_000_000, 2)
    edges = []
    for _ in range(2):
        w = torch.rand(32) * 9 + 1
        edges.append(-4.0 + 8.0 * torch.cat([torch.zeros(1), w.cumsum(0)]) / w.sum())
    print(f"joint: N = 1e6 float32 pairs, 32 x 32 uneven bins, forward+backward, {args.rounds} "
          "rounds: min (median)")
    for kernel in args.kernels:
        t = interleaved({"x": joint_fwd_bwd(xy, edges, kernel, False),
                         "x+edges": joint_fwd_bwd(xy, edges, kernel, True)}, args.rounds)
        print(f"{kernel:10s} edges grads {ratio(t, 'x+edges', 'x')}")


if __name__ == "__main__":
    main()
