"""Live labels against offline labels, on the simulated probe run through the whole live pipeline
with its true templates given (so that labels are judged on units that are right): how often a
unit's live label (and the last labelling round's proposal, before the hysteresis holds it) equals
the label C4's features of the same spikes give after the run, how often units are labelled as two
different types, how soon units get a stable label, and how often the label is the true type.
``benchmarks/bench_classifier.py`` prints and saves it; ``scripts/build_default_model.py`` puts it in
the model card.
"""

from __future__ import annotations

import numpy as np

from rtclass.cell_types import CELL_TYPE_NAMES, UNLABELED
from rtclass.classify.model import CellTypeModel
from rtclass.config import Config, SimulateConfig
from rtclass.errors import InputError
from rtclass.features.c4 import c4_acg
from rtclass.features.spike_quality import labelled_acg_spikes
from rtclass.ingest.base import SourceStats, StreamInfo
from rtclass.pipeline.chain import bank_from_templates
from rtclass.pipeline.live import Pipeline
from rtclass.sim.recording import Simulation

#: labelling rounds on data time, every second (the run goes faster than real time)
LABEL_INTERVAL_S = 1.0
#: the simulated source's chunk (10 ms at 30 kHz)
SIM_CHUNK_SAMPLES = 300


class SimSource:
    """The simulator as a finite source (as fast as possible): the benchmark measures labels."""

    def __init__(self, sim: Simulation, chunk: int):
        self.sim, self.chunk, self.syn = sim, chunk, sim.synthesizer()
        self.stats = SourceStats()

    def open(self):
        return StreamInfo("bench", self.sim.n_channels, self.sim.fs)

    @property
    def finished(self):
        return self.syn.next_sample >= self.sim.n_samples

    def read(self, timeout_s):
        from rtclass.ingest.chunk import Chunk

        first = self.syn.next_sample
        data = self.syn.read(min(self.chunk, self.sim.n_samples - first))
        self.stats.samples_in += data.shape[0]
        return Chunk(data, first, (first + data.shape[0] - 1) / self.sim.fs)

    def close(self):
        pass


def offline_labels(quality, fs, min_good_s, units, spikes, waves, layers, model, threshold, period_end_s):
    """Each unit's label from C4's features of its spikes after the run (through C4's spike filter
    ``quality`` over ``[0, period_end_s]`` when the live run used it; None: C4's period), and the
    units the filter withholds."""
    acg_spikes, withheld = {}, set()
    for u in units:
        if quality is None:
            acg_spikes[u] = np.sort(spikes["sample"][spikes["unit"] == u])
            continue
        t = labelled_acg_spikes(quality.spikes_of(u), quality.amplitudes_of(u), fs, min_good_s, period_end_s)
        if t is None:
            withheld.add(u)
            t = quality.spikes_of(u)
        acg_spikes[u] = t
    acg = np.stack([c4_acg(acg_spikes[u]) for u in units])
    names, _, _ = model.label(model.predict(acg, waves, layers), threshold)
    return [UNLABELED if u in withheld else str(o) for u, o in zip(units, names)], withheld


def live_against_offline(duration_s: float, seed: int, model_path: str, layers: bool, spike_filter: str) -> dict:
    """``duration_s`` of simulated seed ``seed`` through the live pipeline with the model at
    ``model_path`` (``layers``: the simulated layer stack given as ``classify.layers``;
    ``spike_filter``: ``classify.spike_filter``), its labels against the offline ones."""
    sim = Simulation(SimulateConfig(duration_s=duration_s, seed=seed))
    model = CellTypeModel(model_path)
    classify = {"model": str(model_path), "interval_s": LABEL_INTERVAL_S, "spike_filter": spike_filter}
    if layers:
        classify["layers"] = sim.layer_ranges()
    cfg = Config().replace(classify=classify, publish={"zmq": False, "lsl": False})
    bank = bank_from_templates(cfg, sim.probe, sim.fs, sim.dense_templates(), np.arange(len(sim.units)), in_uv=True)
    pipe = Pipeline(cfg, SimSource(sim, SIM_CHUNK_SAMPLES), probe=sim.probe, bank=bank)
    pipe.open()
    lab = pipe.labeler
    history: dict[int, list[tuple[float, int]]] = {}
    next_tick = cfg.classify.interval_s
    try:
        while not pipe.source.finished:
            pipe.process(pipe.source.read(0.0))
            now = pipe.samples_processed / sim.fs
            if now >= next_tick:
                lab.tick()
                for u in range(lab.codes.size):
                    history.setdefault(u, []).append((now, int(lab.codes[u])))
                next_tick += cfg.classify.interval_s
    finally:
        pipe.close()
    feats = pipe.chain.features
    units = [
        u for u in feats.index if feats.spike_count(u) >= cfg.classify.min_spikes and feats.waveform(u) is not None
    ]
    if not units:
        raise InputError(
            f"no unit reached {cfg.classify.min_spikes} spikes in {duration_s:g} s of simulated seed {seed}: "
            "nothing to compare; give a longer duration"
        )
    spikes = pipe.log.spikes()
    waves = np.stack([feats.waveform(u) for u in units])
    live = {u: CELL_TYPE_NAMES[int(lab.codes[u])] if u < lab.codes.size else UNLABELED for u in units}
    # the last round's proposal: the live label before the hysteresis holds it
    proposed = {u: lab.proposal_of(u) for u in units}
    # offline: C4's features of each unit's spikes, through C4's spike filter (with the live run's
    # minimum of good seconds) when the live run used it, over the whole run (the data the live run
    # had) and with C4's own period (up to the last whole minute of the unit's train)
    whole_run_s = sim.n_samples / sim.fs
    offline = {
        rule: offline_labels(
            pipe.chain.spike_quality,
            sim.fs,
            cfg.classify.spike_filter_min_good_s,
            units,
            spikes,
            waves,
            [lab.layers_of(u) for u in units] if model.use_layer else None,
            model,
            lab.threshold,
            period,
        )
        for rule, period in (("whole_run", whole_run_s), ("c4_period", None))
    }
    off_names, withheld_offline = offline["whole_run"]
    agree = {rule: float(np.mean([live[u] == o for u, o in zip(units, names)])) for rule, (names, _) in offline.items()}
    proposal_agrees = float(np.mean([proposed[u] == o for u, o in zip(units, off_names)]))
    # units labelled both live and offline with different types (not one side abstaining)
    contradicted = [u for u, o in zip(units, off_names) if UNLABELED not in (live[u], o) and live[u] != o]
    truth = {u: sim.units[u].cell_type for u in units}
    labelled = [u for u in units if live[u] != UNLABELED]
    correct = np.mean([live[u] == truth[u] for u in labelled]) if labelled else float("nan")
    # time from a unit's first spike to its last label change (its stable label)
    first_spike = {u: spikes["sample"][spikes["unit"] == u].min() / sim.fs for u in units}
    stable = []
    for u in labelled:
        h = history.get(u, [])
        final = h[-1][1]
        t_stable = next(t for t, c in reversed(h) if c != final) if any(c != final for _, c in h) else h[0][0]
        last_change = min((t for t, c in h if c == final and t >= t_stable), default=h[-1][0])
        stable.append(last_change - first_spike[u])
    return {
        "seconds": duration_s,
        "classify_layers": cfg.classify.layers,
        "units_with_features": len(units),
        "units_labelled": len(labelled),
        "live_equals_offline_label": agree["whole_run"],
        "live_equals_offline_label_c4_period": agree["c4_period"],
        "live_proposal_equals_offline_label": proposal_agrees,
        "units_labelled_as_different_types_live_and_offline": len(contradicted),
        "labels_right_vs_ground_truth": float(correct),
        "median_s_first_spike_to_stable_label": float(np.median(stable)) if stable else None,
        "confidence_ratio": lab.threshold,
        "spike_filter": cfg.classify.spike_filter,
        "spike_filter_withheld_live": {str(u): why for u, why in lab.withheld.items()},
        "spike_filter_withheld_offline": sorted(int(u) for u in withheld_offline),
        "spike_filter_spikes_left_out_live": {str(u): n for u, n in lab.filtered.items()},
        "per_unit": [
            {
                "unit": int(u),
                "cell_type": truth[u],
                "live_label": live[u],
                "live_proposal": proposed[u],
                "offline_label": str(o),
                "offline_label_c4_period": str(c4),
            }
            for u, o, c4 in zip(units, off_names, offline["c4_period"][0])
        ],
        "by_type": {
            t: {
                "units": sum(truth[u] == t for u in units),
                "labelled": sum(truth[u] == t for u in labelled),
                "right": sum(truth[u] == t and live[u] == t for u in labelled),
            }
            for t in sorted(set(truth.values()))
        },
    }
