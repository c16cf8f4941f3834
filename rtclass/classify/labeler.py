"""The live labeler: labels units from their current features, off the hot path.

Every ``interval_s`` its thread reads the features of the units with at least ``min_spikes``
spikes from the ``UnitFeatures``, runs the ONNX model on the batch, and proposes for each unit the top
class if its confidence ratio (top probability / second, as in C4) reaches the threshold, else
``unlabeled``. A unit's published label changes only after the same proposal on
``hysteresis_ticks`` consecutive ticks.

With a ``SpikeQualityFilter`` (``classify.spike_filter = c4``), the 3D-ACG is built, as C4 builds
it, from the unit's spikes in sections with few refractory violations and missed spikes: while
every judged spike is good that is the live 3D-ACG; once some are not, it is computed from the
good ones (again once the unit's judged spikes have grown by 5 %). A unit C4 would skip (too
few good spikes) is proposed ``unlabeled``, with the reason in ``withheld``. Until a unit can be
judged (more than 300 spikes, a complete 30 s window) its live 3D-ACG is used as it is.

The hot path reads the current labels (per-unit code and confidence arrays, replaced as a whole,
so a reader never sees half an update) and never waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from rtclass.cell_types import CELL_TYPE_NAMES, N_LOG_LAGS, N_RATE_BINS, UNLABELED, WAVEFORM_SAMPLES
from rtclass.classify.model import Classifier
from rtclass.config import ClassifyConfig
from rtclass.features.c4 import c4_acg_from_bins
from rtclass.features.spike_quality import SpikeQualityFilter
from rtclass.features.unit_features import UnitFeatures

log = logging.getLogger("rtclass.labeler")

#: a 3D-ACG computed from a unit's good spikes is computed again once the unit's judged spikes have
#: grown by this fraction (computing it costs time in proportion to the spikes: about 0.4 s for an
#: hour of a 50 Hz unit, so once per chunk would cost a core a few filtered units)
FILTERED_ACG_REFRESH_GROWTH = 0.05
#: a round that starts more than this many intervals after the last is late (counted)
LATE_AFTER_INTERVALS = 2.0


def _no_data_time() -> float:
    return 0.0


class LiveLabeler:
    def __init__(
        self,
        cfg: ClassifyConfig,
        model: Classifier,
        features: UnitFeatures,
        layers_of=None,
        data_time_s: Callable[[], float] | None = None,
        quality: SpikeQualityFilter | None = None,
    ):
        """``data_time_s``: the stream time (s) processed so far, which stamps each unit's first
        label (``first_labelled``); without it, first labels are stamped 0."""
        self.cfg = cfg
        self.model = model
        self.features = features
        self.layers_of = layers_of  # unit id -> layer name, when the model takes the layer
        self.codes = np.zeros(0, np.int16)  # by unit id: cell_type_code in force
        self.confidence = np.zeros(0, np.float32)
        self.probabilities: dict[int, list[float]] = {}
        self._proposal: dict[int, tuple[str, int]] = {}  # unit -> (proposed label, consecutive ticks)
        self.version = 0
        self.ticks = 0
        #: rounds that started later than LATE_AFTER_INTERVALS intervals after the one before, and rounds that failed
        self.late_rounds = 0
        self.failed_rounds = 0
        self.last_tick_s = 0.0
        self.first_labelled: dict[int, float] = {}  # unit -> data time (s) of its first label
        #: the last round's classifier input: (unit ids, 3D-ACGs, waveforms), or None before one
        self.inputs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._data_time_s = data_time_s or _no_data_time
        #: the confidence ratio a label needs: the config's, or (0) the model's calibrated one
        self.threshold = cfg.confidence_ratio or model.confidence_ratio
        self.quality = quality
        #: units C4's spike filter leaves without enough good spikes -> why (proposed unlabeled)
        self.withheld: dict[int, str] = {}
        #: units whose 3D-ACG leaves out some spikes the filter judged bad -> spikes left out
        self.filtered: dict[int, int] = {}
        self._filtered_acg: dict[int, tuple[int, np.ndarray]] = {}  # unit -> (judged spikes, 3D-ACG)

    def _acg3d(self, unit: int) -> np.ndarray | None:
        """The unit's 3D-ACG from the spikes C4's filter keeps (None: it keeps too few)."""
        if self.quality is None:
            return self.features.acg3d(unit)
        verdict, judged = self.quality.judge(unit)
        if verdict is None or verdict.all_good:
            self.filtered.pop(unit, None)
            self.withheld.pop(unit, None)
            return self.features.acg3d(unit)
        if not verdict.passes:
            self.withheld[unit] = verdict.reason
            self.filtered.pop(unit, None)
            return None
        self.withheld.pop(unit, None)
        self.filtered[unit] = int(judged.size - verdict.good.sum())
        cached = self._filtered_acg.get(unit)
        if cached is None or judged.size > cached[0] * (1 + FILTERED_ACG_REFRESH_GROWTH):
            bins = judged[verdict.good] // self.features.samples_per_bin
            cached = (judged.size, c4_acg_from_bins(bins).astype(np.float32))
            self._filtered_acg[unit] = cached
        return cached[1]

    def tick(self) -> int:
        """One labelling round; returns how many units changed label."""
        t0 = time.perf_counter()
        ready = [u for u in list(self.features.index) if self.features.spike_count(u) >= self.cfg.min_spikes]
        waves = {u: self.features.waveform(u) for u in ready}
        with_wave = [u for u in ready if waves[u] is not None]
        acgs = {u: self._acg3d(u) for u in with_wave}
        units = [u for u in with_wave if acgs[u] is not None]
        held = [u for u in with_wave if acgs[u] is None]
        self.ticks += 1
        if not with_wave:
            return 0
        names, ratio, probs = [], np.zeros(0), np.zeros((0, len(self.model.classes)))
        if units:
            acg = np.stack([acgs[u] for u in units])
            wave = np.stack([waves[u] for u in units])
            layers = [self.layers_of(u) for u in units] if self.model.use_layer and self.layers_of else None
            self.inputs = (np.asarray(units, np.int32), acg, wave)
            probs = self.model.predict(acg, wave, layers)
            names, _, ratio = self.model.label(probs, self.threshold)
            names = list(names)
        units = units + held  # C4 would skip these: proposed unlabeled
        names = names + [UNLABELED] * len(held)
        ratio = np.concatenate([ratio, np.zeros(len(held))])
        probs = np.concatenate([probs, np.zeros((len(held), probs.shape[1]))])
        codes, conf = self.codes.copy(), self.confidence.copy()
        top = int(max(units)) + 1
        if codes.size < top:
            codes = np.concatenate([codes, np.zeros(top - codes.size, np.int16)])
            conf = np.concatenate([conf, np.zeros(top - conf.size, np.float32)])
        changed = 0
        for u, name, r, p in zip(units, names, ratio, probs):
            self.probabilities[u] = [float(v) for v in p]
            prev, n = self._proposal.get(u, (None, 0))
            n = n + 1 if name == prev else 1
            self._proposal[u] = (name, n)
            code = CELL_TYPE_NAMES.index(str(name))
            if n >= self.cfg.hysteresis_ticks and codes[u] != code:
                codes[u] = code
                changed += 1
                if code and u not in self.first_labelled:
                    self.first_labelled[u] = self._data_time_s()
            conf[u] = float(r) if codes[u] else 0.0
        self.codes, self.confidence = codes, conf
        if changed:
            self.version += 1
        self.last_tick_s = time.perf_counter() - t0
        return changed

    def proposal_of(self, unit: int) -> str:
        """The label the latest round proposed for ``unit`` (the published label follows it after
        ``hysteresis_ticks`` rounds); ``unlabeled`` for a unit no round has seen."""
        return self._proposal.get(int(unit), (UNLABELED, 0))[0]

    def warm_up(self) -> None:
        """One inference on zeros: onnxruntime allocates on its first run."""
        units = 4
        acg = np.zeros((units, N_RATE_BINS, N_LOG_LAGS + 1), np.float32)
        self.model.predict(acg, np.zeros((units, WAVEFORM_SAMPLES), np.float32))

    def label_of(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cell_type_code, confidence) for an array of unit ids (-1 and unknown: 0)."""
        codes, conf = self.codes, self.confidence
        ok = (units >= 0) & (units < codes.size)
        c = np.zeros(units.size, np.int16)
        f = np.zeros(units.size, np.float32)
        c[ok], f[ok] = codes[units[ok]], conf[units[ok]]
        return c, f

    def _loop(self) -> None:
        interval = self.cfg.interval_s
        last = time.perf_counter()
        while not self._stop.wait(interval):
            now = time.perf_counter()
            if now - last > LATE_AFTER_INTERVALS * interval:  # the round before took long, or no CPU
                self.late_rounds += 1
            last = now
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the labeler must never take the pipeline down
                self.failed_rounds += 1
                log.exception("labelling round failed; the pipeline goes on with the previous labels")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rtclass-labeler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
