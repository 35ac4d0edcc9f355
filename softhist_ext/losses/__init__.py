"""Losses from fused histograms: mutual information, distances between
histograms, and the Histogram loss for embeddings."""

from .distances import DISTANCES, EPS, HistogramLoss, histogram_distance
from .embedding import EmbeddingHistogramLoss, embedding_histogram_loss
from .information import MutualInformationLoss, mutual_information

__all__ = [
    "DISTANCES", "EPS", "EmbeddingHistogramLoss", "HistogramLoss", "MutualInformationLoss",
    "embedding_histogram_loss", "histogram_distance", "mutual_information",
]
