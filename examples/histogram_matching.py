"""Equalisation, CLAHE and colour matching of a real photo, and a tone curve
learned by gradient descent on a histogram loss.

The photo is scikit-image's astronaut (512 x 512 RGB, 0..255), the colour
reference its coffee cup. Every function works on all channels in one call:

- softhist_ext.functional.equalize: each channel's soft CDF;
- softhist_ext.functional.equalize_clahe: CLAHE on 8 x 8 tiles;
- softhist_ext.functional.match_histograms: the astronaut in the coffee's
  colour distribution, per channel;
- a gradient-based use: one monotone tone curve per channel (16 linear
  pieces), fitted with Adam so that the earth mover's distance between the
  curve's output histograms and the coffee's (losses.HistogramLoss("emd"))
  is as small as possible.

Prints the distances and saves histogram_matching.png next to this file.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from skimage import data  # noqa: E402

import softhist_ext  # noqa: E402
from softhist_ext import functional  # noqa: E402

PIECES = 16


def rgb(image) -> torch.Tensor:
    """An (H, W, 3) uint8 array as a (1, 3, H, W) float tensor in 0..255."""
    return torch.from_numpy(image).permute(2, 0, 1)[None].float()


def tone_curve(image: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """A monotone piecewise-linear map of 0..255 onto 0..255 per channel:
    the knots' heights are the normalised running sums of positive steps
    (softplus of the parameters, steps (3, PIECES))."""
    rise = torch.nn.functional.softplus(steps)
    knots = torch.cat([torch.zeros(3, 1), 255 * rise.cumsum(1) / rise.sum(1, keepdim=True)], 1)
    position = image.clamp(0, 255) / 255 * PIECES
    piece = position.floor().clamp(max=PIECES - 1)
    frac = position - piece
    index = piece.long().flatten(2)  # (1, 3, N)
    lo = knots[None].expand(1, 3, PIECES + 1).gather(2, index).view_as(image)
    hi = knots[None].expand(1, 3, PIECES + 1).gather(2, index + 1).view_as(image)
    return lo + frac * (hi - lo)


def fit_tone_curve(source: torch.Tensor, reference: torch.Tensor, iterations: int = 150):
    loss_fn = softhist_ext.losses.HistogramLoss("emd", bins=64, min=0.0, max=255.0)
    steps = torch.zeros(3, PIECES, requires_grad=True)  # the identity curve
    opt = torch.optim.Adam([steps], lr=0.1)
    history = []
    for _ in range(iterations):
        opt.zero_grad()
        loss = loss_fn(tone_curve(source, steps), reference)
        loss.backward()
        opt.step()
        history.append(loss.item())
    return steps.detach(), history


def histogram_panel(ax, image: torch.Tensor, scale: float) -> None:
    """Each channel's exact histogram (the hard kernel), 64 bins over 0..255."""
    counts = softhist_ext.histc(image[0].flatten(1) * scale, 64, 0.0, 255.0, kernel="hard", dim=-1)
    centres = (torch.arange(64) + 0.5) * 255 / 64
    for channel, colour in zip(counts, ("tab:red", "tab:green", "tab:blue")):
        ax.plot(centres, channel / channel.sum(), color=colour, lw=1)
    ax.set_xlim(0, 255)
    ax.set_yticks([])


def main() -> None:
    torch.manual_seed(0)
    source, reference = rgb(data.astronaut()), rgb(data.coffee())
    equalized = functional.equalize(source) * 255
    clahe = functional.equalize_clahe(source, clip_limit=4.0) * 255
    matched = functional.match_histograms(source, reference)
    steps, history = fit_tone_curve(source, reference)
    with torch.no_grad():
        curved = tone_curve(source, steps)

    emd = softhist_ext.losses.HistogramLoss("emd", bins=64, min=0.0, max=255.0, reduction="none")
    print("earth mover's distance to the coffee's colours, per channel (R, G, B), in levels:")
    rows = [("astronaut", source), ("match_histograms", matched), ("learned tone curve", curved)]
    for name, image in rows:
        print(f"  {name:20s} " + " ".join(f"{d:6.2f}" for d in emd(image, reference)[0].tolist()))

    panels = [("astronaut", source), ("equalize", equalized), ("equalize_clahe", clahe),
              ("match_histograms\nto the coffee", matched), ("learned tone curve\n(EMD loss)", curved),
              ("reference: coffee", reference)]
    fig, axes = plt.subplots(2, len(panels) + 1, figsize=(3 * (len(panels) + 1), 5.6),
                             gridspec_kw={"height_ratios": [3, 1.3]})
    for column, (title, image) in enumerate(panels):
        axes[0, column].imshow(image[0].permute(1, 2, 0).clamp(0, 255).byte().numpy())
        axes[0, column].set_title(title, fontsize=10)
        axes[0, column].axis("off")
        histogram_panel(axes[1, column], image, 1.0)
    levels = torch.linspace(0, 255, 256).view(1, 1, 256, 1).expand(1, 3, 256, 1)
    curves = tone_curve(levels, steps)[0, :, :, 0]
    for channel, colour in zip(curves, ("tab:red", "tab:green", "tab:blue")):
        axes[0, -1].plot(levels[0, 0, :, 0], channel, color=colour)
    axes[0, -1].plot([0, 255], [0, 255], "k:", lw=0.8)
    axes[0, -1].set_title("learned tone curves", fontsize=10)
    axes[0, -1].set_aspect("equal")
    axes[1, -1].plot(history, color="k")
    axes[1, -1].set_title("EMD loss per step", fontsize=9)
    fig.tight_layout()
    out = Path(__file__).with_suffix(".png")
    fig.savefig(out, dpi=80)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
