"""Typed, scriptable wrappers around ``torch.ops.softhist``."""

from typing import Optional

import torch
from torch import Tensor


def histc(
    input: Tensor,
    bins: int = 100,
    min: float = 0.0,
    max: float = 0.0,
    kappa: Optional[float] = None,
) -> Tensor:
    r"""Differentiable :func:`torch.histc`.

    Each sample spreads over the bins by a logistic kernel of slope ``kappa``:

    .. math::
        \text{out}_b = \sum_i \sigma(\kappa(x_i - e_b)) - \sigma(\kappa(x_i - e_{b+1})),
        \qquad e_j = \text{min} + j\,\frac{\text{max} - \text{min}}{\text{bins}}

    so samples well inside ``[min, max]`` add exactly 1 in total, and
    ``kappa -> inf`` gives ``torch.histc``. Gradients flow to ``input``
    (first and second order); only the bins a sample's kernel reaches are
    touched, so memory is O(N + bins).

    Args:
        input: samples of any shape (flattened), float16/bfloat16/float32/float64.
            NaN and +-inf samples add nothing and get zero gradient.
        bins: number of bins, at least 1.
        min, max: the histogram range. If equal (the default, 0 and 0), the range
            of the finite samples is used, as in ``torch.histc``; that range is a
            constant for autograd.
        kappa: sigmoid slope in 1/units of ``input``. ``None`` uses
            ``4 * bins / (max - min)``: each kernel is a fixed fraction of a bin
            wide whatever the data's scale (see the README, "Choosing kappa").

    Returns:
        A tensor of shape ``(bins,)`` with ``input``'s dtype and device.
    """
    params = torch.ops.softhist.params(input, bins, min, max, kappa)
    return torch.ops.softhist.scatter(input, None, params, bins, 0)
