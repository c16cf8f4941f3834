"""Reference verdicts of C4's spike filter, from npyx itself, for ``tests/features/test_spike_quality.py``.

Needs npyx 4.3.1 in the Python that runs it (not an rtclass dependency: e.g. a scratch venv with
``pip install npyx six``). It draws seeded units with refractory spike trains and amplitudes, some
with a stretch of missed low-amplitude spikes, a stretch of contamination or an amplitude
distribution cut throughout, runs ``npyx.spk_t.trn_filtered`` on each as C4's
``predict_cell_types`` calls it (``period_m=None``, 5 % thresholds, 180 s of good sections) and
saves the spikes with npyx's good-spike masks to ``tests/features/data/npyx_spike_filter.npz``.

    python scripts/npyx_spike_filter_reference.py
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "features" / "data" / "npyx_spike_filter.npz"
FS = 30000
DURATION_S = 330.0
N_UNITS = 8
SEED = 20261202


def draw_units(rng: np.random.Generator):
    times, amps = [], []
    for u in range(N_UNITS):
        rate_hz, dead_s = rng.uniform(5, 30), rng.uniform(0.0005, 0.003)
        t = np.cumsum(rng.exponential(1 / rate_hz, int(rate_hz * DURATION_S * 1.2)) + dead_s)
        t = t[t < DURATION_S]
        a = rng.normal(rng.uniform(20, 80), rng.uniform(3, 12), t.size)
        start = rng.uniform(30, 200)
        stop = start + rng.uniform(20, 120)
        kind = u % 4
        if kind == 1:  # missed low-amplitude spikes for a while (drift away from the probe)
            keep = ~((t > start) & (t < stop) & (a < np.median(a)))
            t, a = t[keep], a[keep]
        elif kind == 2:  # another unit's spikes for a while
            extra = rng.uniform(start, stop, int((stop - start) * rate_hz * 0.5))
            t = np.sort(np.concatenate([t, extra]))
            a = rng.normal(50, 8, t.size)
        elif kind == 3:  # a threshold cutting the amplitudes throughout
            keep = a > np.percentile(a, 30)
            t, a = t[keep], a[keep]
        times.append(np.round(t * FS).astype(np.int64))
        amps.append(np.abs(a).astype(np.float16).astype(np.float32))
    return times, amps


def main() -> None:
    import npyx.spk_t as spk_t  # noqa: PLC0415 - only this script needs npyx

    warnings.filterwarnings("ignore")
    times, amps = draw_units(np.random.default_rng(SEED))
    # trn_filtered reads a phy folder; hand it these trains instead
    spk_t.trn = lambda dp, unit, **kw: times[unit]
    spk_t.load_amplitudes = lambda dp, unit, *a, **kw: amps[unit]
    spk_t.get_npyx_memory = lambda dp: Path(tempfile.mkdtemp())
    masks = []
    for u in range(N_UNITS):
        _, good = spk_t.trn_filtered(
            "units",
            u,
            period_m=None,
            fp_threshold=0.05,
            fn_threshold=0.05,
            consecutive_n_seconds=180,
            again=True,
            save=False,
        )
        masks.append(np.asarray(good, bool))
        print(f"unit {u}: {times[u].size} spikes, {int(masks[-1].sum())} good")
    counts = np.array([t.size for t in times])
    np.savez_compressed(
        OUT,
        samples=np.concatenate(times).astype(np.uint32),
        amplitudes=np.concatenate(amps).astype(np.float16),
        good=np.concatenate(masks),
        counts=counts,
        sample_rate_hz=FS,
    )
    print(f"saved {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
