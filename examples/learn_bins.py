"""Learnable bins: a classifier on histogram features, with bin edges (and
kappa) learned end to end against fixed even bins. Draws
examples/learn_bins.png.

    pip install ".[examples]"
    python examples/learn_bins.py

The data: scikit-learn's digits (1797 images of 8 x 8 pixels, intensities
0..16). The features: for each image, the histogram of each of its 8 pixel
rows in 4 bins over [0, 16] (softhist_ext.nn.SoftHistogram with dim=-1),
then a linear layer to the 10 classes. With learnable=True the 5 edges and
kappa are Parameters trained with the rest; with learnable=False they stay
at 0, 4, 8, 12, 16. Same seed, data split, optimiser and epochs for both.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import softhist_ext  # noqa: E402

BINS, EPOCHS = 4, 300


def split():
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)  # (1797, 8, 8)
    y = torch.tensor(digits.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    test, train = order[:600], order[600:]
    return (x[train], y[train]), (x[test], y[test])


def train(learnable: bool, data):
    torch.manual_seed(0)
    layer = softhist_ext.nn.SoftHistogram(BINS, 0.0, 16.0, learnable=learnable, dim=-1)
    head = torch.nn.Linear(8 * BINS, 10)
    model = torch.nn.Sequential(layer, torch.nn.Flatten(), head)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    (x, y), (x_test, y_test) = data
    for _ in range(EPOCHS):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return layer, accuracy


def main() -> None:
    data = split()
    fixed, fixed_accuracy = train(False, data)
    learned, learned_accuracy = train(True, data)
    edges = learned.edges.detach()
    print(f"test accuracy, {BINS} bins per pixel row: fixed even bins {fixed_accuracy:.3f}, "
          f"learned bins {learned_accuracy:.3f}")
    print("learned edges:", [round(e, 2) for e in edges.tolist()],
          f"kappa {learned.kappa.item():.2f} (started at {4 * BINS / 16:.2f})")

    fig, ax = plt.subplots(figsize=(7, 3.6))
    pixels = data[0][0].flatten()
    ax.hist(pixels.numpy(), bins=17, range=(-0.5, 16.5), color="0.8", label="pixel intensities (train)")
    for i, e in enumerate(torch.linspace(0, 16, BINS + 1).tolist()):
        ax.axvline(e, color="tab:blue", ls=":", label="fixed even edges" if i == 0 else None)
    for i, e in enumerate(edges.tolist()):
        ax.axvline(e, color="tab:red", lw=2, label="learned edges" if i == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("intensity")
    ax.set_title(f"digits, {BINS} bins per pixel row: accuracy {fixed_accuracy:.1%} (fixed) "
                 f"vs {learned_accuracy:.1%} (learned)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(__file__).with_suffix(".png")
    fig.savefig(out, dpi=100)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
