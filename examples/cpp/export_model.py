"""Exports the TorchScript model that examples/cpp/main.cpp runs.

    python export_model.py model.pt

The model is a soft histogram of its input shifted by a learnable ``shift``:
the smallest model with a parameter whose gradient flows through
``softhist_ext.histc``.
"""

import sys

import torch

import softhist_ext


class ShiftedHistogram(torch.nn.Module):
    def __init__(self, bins: int = 8, min: float = -2.0, max: float = 2.0, shift: float = 0.0):
        super().__init__()
        self.bins = bins
        self.min = min
        self.max = max
        self.shift = torch.nn.Parameter(torch.tensor(shift, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return softhist_ext.histc(x + self.shift, self.bins, self.min, self.max)


def export(path: str, **kwargs) -> None:
    torch.jit.script(ShiftedHistogram(**kwargs)).save(path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python export_model.py MODEL.pt")
    export(sys.argv[1], shift=0.25)
