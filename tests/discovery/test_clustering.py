"""One discovery round's clustering (``rtclass.discovery.clustering``): PCA + ISO-SPLIT of a zone's
snippets into clusters with their median waveforms, with results that depend on the snippets only."""

import numpy as np

from rtclass.discovery.clustering import cluster_snippets, median_of_rows, principal_axes

W, K, PRE = 20, 6, 8


def _shape(depth, width, lag, spread):
    t = np.arange(W)[:, None]
    k = np.arange(K)[None, :]
    trough = -depth * np.exp(-0.5 * ((t - PRE - lag) / width) ** 2)
    return (trough * np.exp(-k / spread)).astype(np.float32)


def _snippets(shapes_counts, noise=8.0, seed=0):
    rng = np.random.default_rng(seed)
    snips, labels = [], []
    for label, (shape, n) in enumerate(shapes_counts):
        snips.append(shape[None] + rng.normal(0, noise, (n, W, K)).astype(np.float32))
        labels.append(np.full(n, label))
    order = rng.permutation(sum(n for _, n in shapes_counts))
    return np.concatenate(snips)[order], np.concatenate(labels)[order]


def test_two_well_separated_units_become_two_clusters():
    a, b = _shape(120, 1.5, 0, 2.0), _shape(70, 3.0, 1, 5.0)
    snips, labels = _snippets([(a, 150), (b, 90)])
    clusters = cluster_snippets(snips, pca_components=6, min_spikes=20, pre=PRE)
    assert len(clusters) == 2
    found = sorted(clusters, key=lambda c: c[0][PRE, 0])  # the deeper first
    for (template, members), label, truth in zip(found, (0, 1), (a, b)):
        assert members.dtype == np.bool_ and members.shape == (snips.shape[0],)
        assert np.array_equal(members, labels == label)  # every snippet in its unit's cluster
        assert template.shape == (W, K)
        assert np.abs(template - truth).max() < 8.0  # the median of ~100 noisy copies
        assert np.array_equal(template, np.median(snips[members], axis=0))


def test_one_unit_is_one_cluster_and_small_clusters_are_left_out():
    a, rare = _shape(100, 2.0, 0, 3.0), _shape(60, 1.0, 3, 1.0)
    snips, labels = _snippets([(a, 200)], seed=1)
    (template, members), *rest = cluster_snippets(snips, 6, 20, PRE)
    assert not rest and members.all()
    snips, labels = _snippets([(a, 200), (rare, 12)], seed=2)
    few = sorted((int(m.sum()), bool(np.array_equal(m, labels == 1))) for _, m in cluster_snippets(snips, 6, 5, PRE))
    assert few == [(12, True), (200, False)]  # the 12 rare snippets are a cluster of their own ...
    (template, members), *rest = cluster_snippets(snips, 6, 20, PRE)
    assert not rest and np.array_equal(members, labels == 0)  # ... left out when a unit needs 20


def test_a_round_depends_only_on_its_snippets():
    snips, _ = _snippets([(_shape(120, 1.5, 0, 2.0), 100), (_shape(70, 3.0, 1, 5.0), 100)], seed=3)
    first = cluster_snippets(snips.copy(), 6, 20, PRE)
    second = cluster_snippets(snips.copy(), 6, 20, PRE)
    assert len(first) == len(second)
    for (t1, m1), (t2, m2) in zip(first, second):
        assert np.array_equal(t1, t2) and np.array_equal(m1, m2)


def test_median_of_rows_is_numpys_median():
    rng = np.random.default_rng(2)
    for n in (1, 2, 47, 250):
        x = rng.normal(0, 10, (n, 20, 12)).astype(np.float32)
        assert np.array_equal(median_of_rows(x), np.median(x, axis=0))


def test_principal_axes_span_the_leading_components():
    rng = np.random.default_rng(4)
    n, d, k = 800, 120, 6
    scales = np.concatenate([np.linspace(30, 10, k), np.full(d - k, 1.0)])
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    x = ((rng.normal(size=(n, d)) * scales) @ basis.T).astype(np.float32)
    x -= x.mean(0)
    got = principal_axes(x, k)
    assert got.shape == (k, d)
    np.testing.assert_allclose(got @ got.T, np.eye(k), atol=1e-4)  # orthonormal
    want = np.linalg.svd(x.astype(np.float64), full_matrices=False)[2][:k]
    # the same subspace: each true axis lies in it
    assert np.all(np.linalg.norm(want @ got.T, axis=1) > 0.999)
    small = x[:10, :12]
    np.testing.assert_allclose(np.abs(principal_axes(small, 3)), np.abs(np.linalg.svd(small)[2][:3]), atol=1e-4)
