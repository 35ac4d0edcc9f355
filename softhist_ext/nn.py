"""Modules built on the ops."""

from typing import Optional, Union

import torch
from torch import Tensor

from . import _checks
from .ops import _check_edges, _edges_histogram, histc


__all__ = ["SoftHistogram"]


class SoftHistogram(torch.nn.Module):
    """A differentiable histogram of its input (softhist_ext.histc), a drop-in
    for the forum's SoftHistogram(bins, min, max, sigma) (sigma there is the
    sigmoid slope, kappa here; both names are accepted). Scriptable.

    The forum's GaussianHistogram(bins, min, max, sigma), whose sigma is a
    standard deviation, is SoftHistogram(bins, min, max, 1 / sigma,
    kernel="gaussian") (bin-integrated rather than sampled at bin centres).

    dim: one histogram per slice along dim, as histc's. learnable=True makes
    it the learnable histogram layer: its bin edges
    (edges, bins + 1 values starting evenly spaced over [min, max]) and
    kappa (starting at the given value or the default for the bin width)
    are Parameters that training moves, through exact gradients (histogram
    with an edges tensor). Edges that cross raise a ValueError; kappa must
    stay positive.

    Examples:
        >>> layer = softhist_ext.nn.SoftHistogram(bins=8, min=-2.0, max=2.0)
        >>> layer(torch.randn(1000)).shape
        torch.Size([8])
        >>> scripted = torch.jit.script(layer)
        >>> learned = softhist_ext.nn.SoftHistogram(8, -2.0, 2.0, learnable=True)
        >>> [name for name, _ in learned.named_parameters()]
        ['edges', 'kappa']
    """

    def __init__(
        self,
        bins: int,
        min: float,
        max: float,
        kappa: Optional[float] = None,
        kernel: str = "logistic",
        *,
        sigma: Optional[float] = None,
        learnable: bool = False,
        dim: Optional[int] = None,
    ) -> None:
        super().__init__()
        _checks.arguments(
            "SoftHistogram", bins=(bins, "int"), min=(min, "constant"), max=(max, "constant"),
            kappa=(kappa, "constant?"), kernel=(kernel, "str"), sigma=(sigma, "constant?"),
            learnable=(learnable, "bool"), dim=(dim, "int?"),
        )
        if kappa is not None and sigma is not None:
            raise ValueError("softhist: pass kappa or its forum name sigma, not both")
        # Plain Python numbers, the types TorchScript reads the attributes as.
        self.bins = int(bins)
        self.min = float(min)
        self.max = float(max)
        k = kappa if kappa is not None else sigma
        self.kernel = kernel
        self.learnable = learnable
        self.dim = dim
        # Checks bins, the range, kappa and the kernel now rather than at the
        # first forward; the default kappa for these bins, as histc sets it.
        # (On the host, whatever the default device: a number to start from;
        # in float64, so that the hard kernel's range is checked against the
        # input's dtype at the forward, not float32's now.)
        start = torch.ops.softhist.params(torch.zeros(1, dtype=torch.float64, device="cpu"), self.bins,
                                          self.min, self.max, None if k is None else float(k), kernel)
        self.initial_kappa = float(start[2])
        if learnable:
            if kernel == "hard":
                raise ValueError("softhist: learnable=True needs a smooth kernel (the hard "
                                 "kernel has no gradient with respect to its bins)")
            if not self.min < self.max:
                raise ValueError(f"softhist: learnable=True needs min < max, where its edges "
                                 f"start evenly spaced; got min={self.min}, max={self.max}")
            dtype = torch.get_default_dtype()
            edges = torch.linspace(self.min, self.max, self.bins + 1, dtype=dtype)
            if not edges.is_meta and not bool((edges[1:] > edges[:-1]).all()):  # (torch.device('meta'))
                raise ValueError(f"softhist: learnable=True's {self.bins + 1} edges over [{self.min}, "
                                 f"{self.max}] are not distinct in {dtype}, the default dtype: use fewer "
                                 f"bins, a wider range, or torch.set_default_dtype(torch.float64)")
            self.edges = torch.nn.Parameter(edges)
            self.kappa: Union[torch.nn.Parameter, float, None] = torch.nn.Parameter(
                torch.empty((), dtype=dtype))
            self.reset_parameters()
        else:
            self.register_parameter("edges", None)
            self.kappa = float(k) if k is not None else None

    def reset_parameters(self) -> None:
        """Learnable: the edges evenly spaced over [min, max] again and kappa
        its starting value, in place (as torch.nn's layers, e.g. after
        to_empty). Fixed: nothing to reset."""
        if self.edges is None or not isinstance(self.kappa, Tensor):
            return
        with torch.no_grad():
            self.edges.copy_(torch.linspace(self.min, self.max, self.bins + 1, dtype=self.edges.dtype,
                                            device=self.edges.device))
            self.kappa.fill_(self.initial_kappa)

    def forward(self, x: Tensor) -> Tensor:
        edges = self.edges
        if edges is None:
            return histc(x, self.bins, self.min, self.max, self.kappa, kernel=self.kernel, dim=self.dim)
        dim = self.dim
        if not torch.jit.is_scripting():
            _checks.arguments("SoftHistogram", input=(x, "Tensor"))
            if dim is not None:
                _checks.dim_in_range("SoftHistogram", dim, x.dim())
        if not x.is_floating_point():  # (the edges would take its dtype)
            raise ValueError("softhist: SoftHistogram's input must be floating-point (float16, "
                             "bfloat16, float32 or float64); convert it with input.float()")
        # The edges in their own dtype (the op takes them in float64): a
        # 16-bit input rounds neither them nor their gradient.
        _check_edges(edges, edges, "SoftHistogram")
        if dim is None:
            return _edges_histogram(x.reshape(-1), None, edges, self.kappa, self.kernel, False)
        return _edges_histogram(x.movedim(dim, -1), None, edges, self.kappa, self.kernel, False).movedim(-1, dim)

    def extra_repr(self) -> str:
        dim = "" if self.dim is None else f", dim={self.dim}"
        kappa = ", learnable=True" if self.learnable else f", kappa={self.kappa}"
        return f"bins={self.bins}, min={self.min}, max={self.max}{kappa}, kernel={self.kernel!r}{dim}"
