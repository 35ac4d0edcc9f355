"""Draws examples/kappa_default.png, the figure behind the default kappa.

kappa=None means kappa = 4 / bin width. With c = kappa * width, a sample at a
bin's centre keeps tanh(c/4) of its mass in that bin, and its gradient is
sech^2(c/4) of what a sample on an edge gets: sharper kernels count more like
torch.histc, smoother ones give more samples a gradient. c = 4 keeps 76% of
the mass and 42% of the gradient. Because c is in bin widths, the same default
works for data in [-1, 1] or [0, 255], with 10 bins or 255.
"""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import softhist_ext  # noqa: E402


def main() -> None:
    c = torch.logspace(math.log10(0.5), math.log10(40), 200)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.semilogx(c, torch.tanh(c / 4), label="mass a bin-centred sample keeps in its bin")
    left.semilogx(c, 1 / torch.cosh(c / 4) ** 2, label="its gradient, relative to an edge sample's")
    left.axvline(4, color="k", ls=":", label="default: kappa = 4 / bin width")
    left.set_xlabel("kappa * bin width")
    left.legend(fontsize=8)
    left.set_title("what kappa trades")

    torch.manual_seed(0)
    x = torch.rand(2000) * 0.6 + torch.randn(2000) * 0.1
    for lo, hi, bins, scale in ((-1.0, 1.0, 10, 1.0), (0.0, 255.0, 10, 127.5)):
        data = (x + 1) * 127.5 if scale != 1.0 else x
        h = softhist_ext.histc(data, bins, lo, hi)
        right.plot(torch.arange(bins), h, "o-" if scale == 1.0 else "x--",
                   label=f"data in [{lo:g}, {hi:g}], kappa=None")
    right.step(torch.arange(10), torch.histc(x, 10, -1, 1), where="mid", color="0.5", label="torch.histc")
    right.set_xlabel("bin")
    right.set_title("the default follows the data's scale")
    right.legend(fontsize=8)
    fig.tight_layout()
    out = Path(__file__).with_suffix(".png")
    fig.savefig(out, dpi=90)
    print(f"at kappa * width = 4 a bin-centred sample keeps {math.tanh(1):.0%} of its mass and "
          f"{1 / math.cosh(1) ** 2:.0%} of an edge sample's gradient; saved {out}")


if __name__ == "__main__":
    main()
