"""Fit a shift and a scale *through* a histogram.

Samples x ~ N(0, 1) are mapped to a * x + b; gradient descent on the squared
distance between the soft histograms of a * x + b and of target samples
y ~ N(2, 0.5^2) recovers a = 0.5, b = 2. torch.histc can't do this: it
has no gradient. Prints progress and saves fit_shift_scale.png (soft vs hard
histograms, before and after).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import softhist_ext  # noqa: E402

BINS, LO, HI = 60, -4.0, 6.0


def main(steps: int = 300) -> None:
    torch.manual_seed(0)
    x = torch.randn(200_000)
    y = 2.0 + 0.5 * torch.randn(200_000)
    # The target goes through the same kernel, so both sides are smoothed alike.
    target = softhist_ext.histc(y, BINS, LO, HI) / len(y)

    a = torch.tensor(1.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    opt = torch.optim.Adam([a, b], lr=0.05)
    snapshots = {"before": (a.item(), b.item())}
    for step in range(steps + 1):
        soft = softhist_ext.histc(a * x + b, BINS, LO, HI) / len(x)
        loss = (soft - target).pow(2).sum()
        if step % 50 == 0:
            print(f"step {step:3d}  loss {loss.item():.3e}  a {a.item():.4f}  b {b.item():.4f}")
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    snapshots["after"] = (a.item(), b.item())
    print(f"fitted a = {a.item():.3f} (true 0.5), b = {b.item():.3f} (true 2.0)")

    centers = torch.linspace(LO, HI, BINS + 1)[:-1] + (HI - LO) / BINS / 2
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (name, (av, bv)) in zip(axes, snapshots.items()):
        z = av * x + bv
        ax.bar(centers, torch.histc(y, BINS, LO, HI) / len(y), width=(HI - LO) / BINS, color="0.8",
               label="target y, torch.histc")
        ax.step(centers, torch.histc(z, BINS, LO, HI) / len(x), where="mid", label="a·x+b, torch.histc (hard)")
        ax.plot(centers, softhist_ext.histc(z, BINS, LO, HI) / len(x), "--", label="a·x+b, softhist_ext.histc")
        ax.set_title(f"{name}: a = {av:.3f}, b = {bv:.3f}")
        ax.set_xlabel("value")
    axes[0].set_ylabel("fraction of samples")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out = Path(__file__).with_suffix(".png")
    fig.savefig(out, dpi=110)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
