"""The Histogram loss for embeddings (Ustinova & Lempitsky, NeurIPS 2016)."""

import torch
from torch import Tensor

from .. import _checks
from .._ranges import compute_dtype
from ..ops import histc


def embedding_histogram_loss(embeddings: Tensor, labels: Tensor, bins: int = 101) -> Tensor:
    """The Histogram loss of Ustinova & Lempitsky ("Learning Deep Embeddings
    with Histogram Loss", NeurIPS 2016): the probability that a random
    negative pair is more similar than a random positive one.

    The embeddings are L2-normalised (torch.nn.functional.normalize, so a
    zero row stays zero), and the cosine similarities s_ij of all pairs i < j
    are split into positive (same label) and negative pairs. Each group is
    linearly interpolated onto R = bins nodes t_r = -1 + r * D, D = 2 / (R - 1)
    (the paper's eqs. 2-3: histc's box kernel at its default kappa, with the
    bins centred on the nodes, range [-1 - D/2, 1 + D/2], open ends), and
    normalised by its number of pairs, giving h+ and h-. Then

        loss = sum_r h-_r * sum_(q <= r) h+_q

    Fused: one histc call (the two groups as two weighted rows), no pairs x
    bins tensor; the N x N similarity matrix is inherent to the method.

    Args:
        embeddings: (N, D) floating point.
        labels: (N,) integer class labels.
        bins: the number of nodes R, at least 2 (default 101: D = 0.02).

    Returns:
        A 0-d tensor, embeddings' dtype; NaN if an embedding holds a NaN or
        an infinity.

    Raises:
        ValueError: no positive pair (no label occurs twice) or no negative
            pair (all labels equal), or bad shapes.

    Examples:
        >>> emb = torch.randn(32, 8, requires_grad=True)
        >>> labels = torch.arange(32) % 4
        >>> loss = softhist_ext.losses.embedding_histogram_loss(emb, labels)
        >>> loss.backward()
        >>> bool(0 <= loss <= 1)
        True
    """
    if not torch.jit.is_scripting():
        _checks.arguments(
            "embedding_histogram_loss", embeddings=(embeddings, "Tensor"),
            labels=(labels, "Tensor"), bins=(bins, "int"),
        )
    if embeddings.dim() != 2:
        raise ValueError(
            f"softhist: embedding_histogram_loss's embeddings must be (N, D), got shape "
            f"{list(embeddings.shape)}"
        )
    n = embeddings.shape[0]
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(
            f"softhist: embedding_histogram_loss's labels must be (N,) = [{n}], got shape "
            f"{list(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"softhist: embedding_histogram_loss's labels must be integers, got {labels.dtype}")
    if not embeddings.is_floating_point():
        raise ValueError(
            f"softhist: embedding_histogram_loss's embeddings must be floating point, got {embeddings.dtype}"
        )
    if bins < 2:
        raise ValueError(f"softhist: embedding_histogram_loss needs bins >= 2 nodes, got {bins}")
    # 16-bit embeddings in float32: their pair counts pass float16's 65504 at
    # 363 embeddings, and the pairs' gradients underflow it.
    e = torch.nn.functional.normalize(embeddings.to(compute_dtype(embeddings)), dim=1)
    sims = e @ e.t()
    compiling = False
    if not torch.jit.is_scripting():
        compiling = torch.compiler.is_compiling()
    if compiling:
        # The pairs i < j by weight, not by index: the same graph for every
        # n (triu_indices would fix n), at twice the samples.
        upper = torch.ones(n, n, dtype=torch.bool, device=sims.device).triu(1)
        s = sims.reshape(-1)
        same = (labels[:, None] == labels[None, :]).reshape(-1)
        pos = (same & upper.reshape(-1)).to(s.dtype)
        neg = (~same & upper.reshape(-1)).to(s.dtype)
    else:
        iu = torch.triu_indices(n, n, 1, device=embeddings.device)
        s = sims[iu[0], iu[1]]
        same = labels[iu[0]] == labels[iu[1]]
        pos, neg = same.to(s.dtype), (~same).to(s.dtype)
    n_pos, n_neg = pos.sum(), neg.sum()
    _check_pairs(n_pos, n_neg)
    half = 1.0 / (bins - 1)  # half the node spacing 2 / (R - 1)
    h = histc(s.expand(2, s.shape[0]), bins, -1.0 - half, 1.0 + half, None, "box",
              torch.stack([pos, neg]), -1, False, False, True)
    h_pos = h[0] / n_pos.clamp_min(1)
    h_neg = h[1] / n_neg.clamp_min(1)
    loss = (h_neg * torch.cumsum(h_pos, 0)).sum()
    # NaN where a similarity is (a NaN or infinite embedding), as torch's
    # losses give: the histograms leave such pairs out, which would read as a
    # low loss.
    loss = torch.where(torch.isfinite(s).all(), loss, torch.full_like(loss, float("nan")))
    return loss.to(embeddings.dtype)


def _check_pairs(n_pos: Tensor, n_neg: Tensor) -> None:
    if not torch.jit.is_scripting():
        if torch.compiler.is_compiling():
            return
    if bool(n_pos == 0):
        raise ValueError(
            "softhist: embedding_histogram_loss needs a positive pair (two embeddings with the "
            "same label), and the batch has none"
        )
    if bool(n_neg == 0):
        raise ValueError(
            "softhist: embedding_histogram_loss needs a negative pair (two embeddings with "
            "different labels), and all labels are equal"
        )


class EmbeddingHistogramLoss(torch.nn.Module):
    """embedding_histogram_loss(embeddings, labels, bins) as a module
    (Ustinova & Lempitsky, NeurIPS 2016; see embedding_histogram_loss).

    Examples:
        >>> loss = softhist_ext.losses.EmbeddingHistogramLoss(bins=51)
        >>> emb = torch.randn(16, 4, requires_grad=True)
        >>> loss(emb, torch.arange(16) % 3).backward()
    """

    def __init__(self, bins: int = 101) -> None:
        super().__init__()
        _checks.arguments("EmbeddingHistogramLoss", bins=(bins, "int"))
        if bins < 2:
            raise ValueError(f"softhist: EmbeddingHistogramLoss needs bins >= 2 nodes, got {bins}")
        self.bins = int(bins)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return embedding_histogram_loss(embeddings, labels, self.bins)
