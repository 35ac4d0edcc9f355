"""Differentiable image operations built on the fused histograms: histogram
equalisation, CLAHE and histogram matching, per image and channel, all
channels and images in one call."""

from .clahe import equalize_clahe
from .equalization import equalize
from .matching import match_histograms

__all__ = ["equalize", "equalize_clahe", "match_histograms"]
