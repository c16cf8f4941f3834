"""One discovery round's clustering of a zone's snippets: PCA, then ISO-SPLIT (pure functions,
run in place or in the clustering worker process)."""

from __future__ import annotations

import numpy as np


def cluster_snippets(
    snips: np.ndarray, pca_components: int, min_spikes: int, pre: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """PCA + ISO-SPLIT of snippets ``[n, W, K]``: (median template, member mask) of each cluster
    with enough members. Pure: runs in the clustering process on live streams."""
    from isosplit6 import isosplit6

    n = snips.shape[0]
    flat = snips.reshape(n, -1).astype(np.float32, copy=False)
    centred = flat - flat.mean(0)  # float32 throughout the PCA: half the time of float64, same clusters
    labels = isosplit6(np.ascontiguousarray(centred @ principal_axes(centred, pca_components).T, dtype=np.float64))
    out = []
    for label in np.unique(labels):
        members = labels == label
        if members.sum() < min_spikes:
            continue
        out.append((median_of_rows(snips[members]), members))
    return out


def median_of_rows(x: np.ndarray) -> np.ndarray:
    """``np.median(x, axis=0)`` (the same values), without its wrappers: on a cluster of 50
    snippets they cost 4x the selection itself."""
    n = x.shape[0]
    k = n // 2
    if n % 2:
        return np.partition(x, k, axis=0)[k]
    middle = np.partition(x, (k - 1, k), axis=0)
    return (middle[k - 1] + middle[k]) * x.dtype.type(0.5)


#: extra directions and power iterations of the randomised PCA (Halko et al. 2011): with these,
#: its leading axes match a full SVD's to well within what the clustering can tell apart
PCA_OVERSAMPLING = 10
PCA_POWER_ITERATIONS = 2


def principal_axes(centred: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` leading principal axes ``[k, d]`` of centred rows ``[n, d]``, by a randomised
    SVD (fixed seed, so a round's result depends only on its snippets): a full SVD of the
    [800, 400] snippets of a unit's wide neighbourhood took 12 ms a round, this ~1 ms."""
    n, d = centred.shape
    if min(n, d) <= k + PCA_OVERSAMPLING:
        return np.linalg.svd(centred, full_matrices=False)[2][:k]
    y = centred @ np.random.default_rng(0).standard_normal((d, k + PCA_OVERSAMPLING)).astype(centred.dtype)
    for _ in range(PCA_POWER_ITERATIONS):
        y = centred @ (centred.T @ np.linalg.qr(y)[0])
    q = np.linalg.qr(y)[0]
    return np.linalg.svd(q.T @ centred, full_matrices=False)[2][:k]
