"""Regenerate ``c4_reference.npz``: npyx 4.3.1's own C4 features on seeded spike trains and
waveforms, for the parity tests of ``rtclass.features.c4``.

Run once, in an environment with npyx (``pip install npyx==4.3.1 six``), from the repository root:

    python tests/data/make_c4_reference.py

The trains and waveforms are generated here from fixed seeds (gamma renewal trains at several
rates, with bursts and duplicated 1 ms bins; biphasic and triphasic waveforms, some positive-first),
so the test can rebuild the same inputs without npyx.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("c4_reference.npz")


def trains() -> list[np.ndarray]:
    out = []
    rng = np.random.default_rng(2025)
    for rate, k, seconds in ((8.0, 1.0, 300), (60.0, 6.0, 120), (120.0, 10.0, 90), (1.1, 1.0, 900), (15.0, 2.0, 200)):
        isi = rng.gamma(k, 1.0 / (k * rate), int(rate * seconds * 1.2))
        t = np.cumsum(isi)
        t = t[t < seconds]
        out.append(np.sort(np.round(t * 30000).astype(np.int64)))
    # a bursty train with many spikes sharing 1 ms bins
    base = np.sort(rng.uniform(0, 200, 2000))
    burst = np.concatenate([base + d for d in (0.0, 0.0004, 0.0013)])
    out.append(np.sort(np.round(burst * 30000).astype(np.int64)))
    return out


def waveforms() -> np.ndarray:
    t = np.arange(120) / 30.0 - 2.0  # ms, trough near 2 ms
    rng = np.random.default_rng(7)
    out = []
    for k in range(12):
        sd = rng.uniform(0.1, 0.3)
        w = -np.exp(-0.5 * (t / sd) ** 2) + rng.uniform(0.1, 0.7) * np.exp(
            -0.5 * ((t - rng.uniform(0.3, 1.2)) / (2 * sd)) ** 2
        )
        if k % 3 == 1:
            w += rng.uniform(0.2, 0.6) * np.exp(-0.5 * ((t + 0.25) / sd) ** 2)  # triphasic
        if k % 4 == 2:
            w = -w  # positive-first
        w = w * rng.uniform(50, 300) + rng.normal(0, 2, t.size)
        out.append(np.roll(w, rng.integers(-8, 8)))
    return np.array(out)


def main() -> None:
    from npyx.corr import convert_acg_log, crosscorr_vs_firing_rate
    from npyx.datasets import preprocess_template

    acg_lin, acg_log, edges = [], [], []
    for t in trains():
        e, acg = crosscorr_vs_firing_rate(t, t, 2000, 1)
        log, _ = convert_acg_log(acg, 1, 2000)
        acg_lin.append(acg)
        acg_log.append(log.reshape(10, 201)[:, 100:] * 10)
        edges.append(e)
    wf = waveforms()
    pre = np.array([preprocess_template(w, peak_sign="negative") for w in wf])
    np.savez_compressed(
        OUT,
        acg_linear=np.array(acg_lin),
        acg_log=np.array(acg_log),
        edges=np.array(edges),
        waveforms=wf,
        preprocessed=pre,
        numpy_version=np.__version__,  # npyx's rate smoothing (np.convolve) rounds differently across versions
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
