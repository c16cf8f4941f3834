import numpy as np

from rtclass.classify.labeler import LiveLabeler
from rtclass.classify.layout import RTCLASS_CLASSES, confidence_ratio
from rtclass.config import ClassifyConfig
from rtclass.features.c4 import c4_acg_from_bins
from rtclass.features.spike_quality import SpikeQualityFilter
from rtclass.features.unit_features import UnitFeatures
from rtclass.matching.matcher import ASSIGNED_DTYPE


class ScriptedModel:
    """Stands in for CellTypeModel: returns the probabilities it is told to."""

    classes = RTCLASS_CLASSES
    use_layer = False
    confidence_ratio = 2.0

    def __init__(self):
        self.next = {}

    def predict(self, acg3d, waveform, layers=None):
        self.seen = acg3d.shape[0]
        self.layers = layers
        return np.array([self.next[i] for i in range(acg3d.shape[0])], np.float32)

    def label(self, p, threshold):
        r = confidence_ratio(p)
        names = np.array([self.classes[i] if x >= threshold else "unlabeled" for i, x in zip(p.argmax(1), r)])
        return names, p.max(1), r


def _bank_with_units(spikes_per_unit):
    bank = UnitFeatures(4, 30000.0, 100, 4)
    n_samples = max(spikes_per_unit) * 3000 + 200
    raw = np.zeros((n_samples, 4), np.float32)
    times, units = [], []
    for u, n in enumerate(spikes_per_unit):
        t = np.arange(n) * 3000 + 100 + u
        for s in t:
            raw[s - 3 : s + 4, 0] -= np.hanning(7).astype(np.float32) * 50
        times.append(t)
        units.append(np.full(n, u))
    t, u = np.concatenate(times), np.concatenate(units)
    order = np.argsort(t, kind="stable")
    bank.update(t[order], u[order], lambda _: np.arange(4), raw, 0)
    return bank


def test_labels_change_only_after_consistent_rounds_and_need_confidence():
    bank = _bank_with_units([150, 150, 20])  # unit 2 has too few spikes to be labelled
    model = ScriptedModel()
    lab = LiveLabeler(ClassifyConfig(hysteresis_ticks=2, min_spikes=100), model, bank)
    model.next = {0: [0.9, 0.05, 0.03, 0.01, 0.01], 1: [0.4, 0.3, 0.1, 0.1, 0.1]}
    lab.tick()
    assert model.seen == 2
    codes, _ = lab.label_of(np.array([0, 1, 2, -1]))
    assert codes.tolist() == [0, 0, 0, 0]  # one round is not enough
    lab.tick()
    codes, conf = lab.label_of(np.array([0, 1, 2, -1]))
    assert codes.tolist() == [1, 0, 0, 0]  # unit 0 -> PkC_ss; unit 1 ratio 1.33 < 2: unlabeled
    assert conf[0] > 2
    model.next = {0: [0.05, 0.05, 0.85, 0.03, 0.02], 1: [0.4, 0.3, 0.1, 0.1, 0.1]}
    lab.tick()
    assert lab.label_of(np.array([0]))[0].tolist() == [1]  # a single disagreeing round changes nothing
    assert lab.proposal_of(0) == "MLI" and lab.proposal_of(1) == "unlabeled" and lab.proposal_of(9) == "unlabeled"
    lab.tick()
    assert lab.label_of(np.array([0]))[0].tolist() == [3]  # MLI after two


def test_a_layer_model_gets_each_units_layer():
    bank = _bank_with_units([150, 150])
    model = ScriptedModel()
    model.use_layer = True
    layer_of_unit = {0: "PCL", 1: "unknown"}
    lab = LiveLabeler(ClassifyConfig(min_spikes=100), model, bank, layers_of=layer_of_unit.get)
    model.next = {0: [0.9, 0.05, 0.03, 0.01, 0.01], 1: [0.9, 0.05, 0.03, 0.01, 0.01]}
    lab.tick()
    assert model.layers == ["PCL", "unknown"]
    model.use_layer = False
    lab.tick()
    assert model.layers is None  # a model without the layer input is not given one


def test_the_thread_runs_and_stops():
    bank = _bank_with_units([150])
    model = ScriptedModel()
    model.next = {0: [0.9, 0.05, 0.03, 0.01, 0.01]}
    lab = LiveLabeler(ClassifyConfig(interval_s=0.05, hysteresis_ticks=1), model, bank)
    lab.start()
    import time

    deadline = time.time() + 5
    while lab.ticks < 2 and time.time() < deadline:
        time.sleep(0.02)
    lab.stop()
    assert lab.ticks >= 2 and lab.label_of(np.array([0]))[0][0] == 1


class _SlowThenFailingModel(ScriptedModel):
    """Each round takes longer than two labelling intervals; every second round raises."""

    def __init__(self, round_s):
        super().__init__()
        self.round_s, self.calls = round_s, 0

    def predict(self, acg3d, waveform, layers=None):
        import time

        self.calls += 1
        time.sleep(self.round_s)
        if self.calls % 2 == 0:
            raise RuntimeError("scripted failure")
        return super().predict(acg3d, waveform, layers)


def test_late_and_failed_rounds_are_counted_and_the_labeller_goes_on():
    import time

    bank = _bank_with_units([150])
    interval_s = 0.02
    model = _SlowThenFailingModel(round_s=4 * interval_s)
    model.next = {0: [0.9, 0.05, 0.03, 0.01, 0.01]}
    lab = LiveLabeler(ClassifyConfig(interval_s=interval_s, hysteresis_ticks=1), model, bank)
    lab.start()
    deadline = time.time() + 10
    while model.calls < 5 and time.time() < deadline:
        time.sleep(0.02)
    lab.stop()
    assert lab.failed_rounds >= 2 and lab.late_rounds >= 3  # every round after a slow one starts late
    assert lab.label_of(np.array([0]))[0][0] == 1  # the good rounds still labelled the unit


def _units_for_the_spike_filter(rng):
    """90 s, three 15 Hz units with refractory trains: 0 clean, 1 with its amplitudes cut by a
    threshold throughout (missed spikes: C4 skips it), 2 with another unit's spikes in 45-55 s
    (every 30 s window that overlaps them fails: 40-60 s is left out)."""
    fs, duration_s = 30000.0, 90.0
    trains, amps = [], []
    for u in range(3):
        t = np.cumsum(rng.exponential(1 / 15.0, 1400) + 0.003)
        t = t[t < duration_s]
        if u == 2:
            t = np.sort(np.concatenate([t, rng.uniform(45.0, 55.0, 150)]))
        a = rng.normal(60.0, 8.0, t.size)
        if u == 1:
            a = np.maximum(a, 58.0) + rng.uniform(0, 0.5, t.size)  # piled up at the cut
        trains.append(np.round(t * fs).astype(np.int64))
        amps.append(a)
    samples = np.concatenate(trains)
    order = np.argsort(samples, kind="stable")
    units = np.concatenate([np.full(t.size, u) for u, t in enumerate(trains)])[order]
    spikes = np.zeros(samples.size, ASSIGNED_DTYPE)
    spikes["sample"], spikes["unit"], spikes["fit"] = samples[order], units, np.concatenate(amps)[order]
    return spikes, int(duration_s * fs)


def test_the_spike_filter_builds_3d_acgs_from_good_spikes_and_withholds_units_c4_would_skip():
    spikes, n_samples = _units_for_the_spike_filter(np.random.default_rng(8))
    bank = UnitFeatures(4, 30000.0, 100, 4)
    raw = np.zeros((n_samples, 4), np.float32)
    raw[spikes["sample"] - 1, 0] = -80.0  # a trough at every spike: each unit has a waveform
    bank.update(spikes["sample"], spikes["unit"], lambda _: np.arange(4), raw, 0)
    quality = SpikeQualityFilter(30000.0, 0.05, 0.05, 0.0)
    quality.process(spikes, n_samples)
    model = ScriptedModel()
    model.next = {i: [0.9, 0.05, 0.03, 0.01, 0.01] for i in range(3)}
    lab = LiveLabeler(ClassifyConfig(hysteresis_ticks=1), model, bank, quality=quality)
    lab.tick()
    units, acg, _ = lab.inputs
    assert units.tolist() == [0, 2]  # unit 1 is not given to the model
    assert lab.label_of(np.array([0, 1, 2]))[0].tolist() == [1, 0, 1]
    assert "0 the missed-spike test" in lab.withheld[1]
    left_out = lab.filtered[2]
    assert 0 < left_out < (spikes["unit"] == 2).sum() / 2
    np.testing.assert_array_equal(acg[0], bank.acg3d(0))  # all good: the live 3D-ACG as it is
    unit2 = spikes["sample"][spikes["unit"] == 2]
    verdict, judged = quality.judge(2)
    assert not verdict.good[(judged > 40 * 30000) & (judged < 60 * 30000)].any()
    assert verdict.good[(judged > 1 * 30000) & (judged < 39 * 30000)].mean() > 0.95
    np.testing.assert_allclose(acg[1], c4_acg_from_bins(judged[verdict.good] // 30), atol=1e-6)
    assert not np.allclose(acg[1], bank.acg3d(2), atol=1e-3)  # the contaminated 3D-ACG differs
    np.testing.assert_array_equal(judged, unit2)  # all the unit's spikes, up to the last complete chunk (90 s)
