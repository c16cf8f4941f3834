import numpy as np

from rtclass.classify.labeler import LiveLabeler
from rtclass.classify.layout import RTCLASS_CLASSES, confidence_ratio
from rtclass.config import ClassifyConfig
from rtclass.features.unit_features import UnitFeatures


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
