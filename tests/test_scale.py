"""More samples than a 32-bit index can count: int64 index math end to end."""

import pytest
import torch

import softhist_ext

# 2^31 bfloat16 samples and their gradient: about 9.5 GB of RAM.
pytestmark = pytest.mark.slow


def bspline_cdf(t: float) -> float:
    a = abs(t)
    mass = (4 * a - 2 * a**3 + 0.75 * a**4) / 6 if a < 1 else 0.5 - max(2 - a, 0) ** 4 / 24
    return 0.5 + (mass if t >= 0 else -mass)


def bspline_pdf(t: float) -> float:
    a = abs(t)
    return (4 - 6 * a**2 + 3 * a**3) / 6 if a < 1 else max(2 - a, 0) ** 3 / 6


def test_more_than_2_31_samples():
    n, tail = 2**31 + 1000, 1000
    # bfloat16: 4 GiB, and its range holds a count of 2^31 (float16's doesn't).
    x = torch.full((n,), 0.375, dtype=torch.bfloat16)  # bin 1 of 4 over [0, 1]
    x[-tail:] = 0.7625  # bin 3, near the edge at 0.75
    near = float(x[-1])
    hard = softhist_ext.histc(x, 4, 0.0, 1.0, kernel="hard")
    assert hard.double().tolist() == [0.0, 2.0**31, 0.0, float(tail)]

    # A smooth kernel, forward and backward, reaches the samples past 2^31.
    kappa = 40.0  # b-spline support +-2/kappa = 0.05
    x.requires_grad_()
    soft = softhist_ext.histc(x, 4, 0.0, 1.0, kappa, kernel="bspline")
    in_bin3 = bspline_cdf(kappa * (near - 0.75))
    assert abs(soft[3].item() - tail * in_bin3) <= 4.0  # bfloat16's spacing near 800
    assert abs(soft[2].item() - tail * (1 - in_bin3)) <= 4.0
    g = torch.tensor([0.0, 0.0, 1.0, -1.0], dtype=torch.bfloat16)
    (grad,) = torch.autograd.grad(soft, x, g)
    expected = -2 * kappa * bspline_pdf(kappa * (near - 0.75))  # (g2 - g3) at the edge 0.75
    assert abs(grad[-1].item() - expected) < 1e-2 * abs(expected)
    assert grad[0].item() == 0.0
