"""Pooled penultimate features -> 2-D maps (t-SNE, UMAP) coloured by label combination."""

from __future__ import annotations

import numpy as np


def tsne(features: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def umap(features: np.ndarray, seed: int) -> np.ndarray:
    import warnings

    from umap import UMAP

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that a fixed seed disables parallelism
        neighbours = min(15, len(features) - 1)
        return UMAP(n_neighbors=neighbours, random_state=seed).fit_transform(features)
