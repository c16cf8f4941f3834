"""What every signal stage declares (``rtclass.stage``): how far back it looks and how long after an
event its result is final; the chain's decision lag is their sum, and durations in ms become
whole samples in one way."""

import pytest

from rtclass.config import Config
from rtclass.dsp.detection import ThresholdDetector
from rtclass.dsp.filtering import BandpassFilter, CommonMedianReference
from rtclass.dsp.guard import NonFiniteGuard
from rtclass.pipeline.chain import DetectionChain
from rtclass.probe import neuropixels
from rtclass.stage import Stage, ms_to_samples


def test_a_stage_declares_nothing_unless_it_says_so():
    assert Stage.lookback_samples == 0 and Stage.decision_latency_samples == 0
    for stage in (NonFiniteGuard(), BandpassFilter(Config().preprocess, 4, 30000.0), CommonMedianReference(4)):
        assert isinstance(stage, Stage)
        assert stage.lookback_samples == 0 and stage.decision_latency_samples == 0  # causal, no look-ahead


@pytest.mark.parametrize(
    "ms, fs, samples", [(1.0, 30000.0, 30), (0.2, 30000.0, 6), (0.33, 30000.0, 10), (0.0, 30000.0, 0), (1.0, 2500.0, 2)]
)
def test_ms_to_samples_rounds_to_whole_samples(ms, fs, samples):
    assert ms_to_samples(ms, fs) == samples and isinstance(ms_to_samples(ms, fs), int)


def test_the_detectors_latency_is_its_sweep_and_the_chain_adds_the_stages_up():
    cfg = Config()
    probe = neuropixels("np1", 384)
    det = ThresholdDetector(cfg.detect, probe.neighbours(50.0), probe.neighbours(100.0), 30000.0)
    assert det.decision_latency_samples == det.sweep == 6 and det.lookback_samples == 12
    chain = DetectionChain(cfg, probe, 30000.0)
    assert all(isinstance(s, Stage) for s in chain.stages)
    assert chain.decision_lag == sum(s.decision_latency_samples for s in chain.stages)
    assert chain.decision_lag > det.sweep  # the matcher's window comes after detection
    assert chain.lookback_samples == max(s.lookback_samples for s in chain.stages) > 0
