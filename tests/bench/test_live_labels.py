"""Live labels against offline labels (``rtclass.bench.live_labels``) on a short simulated run:
without C4's spike filter the live features are the offline features of the same spikes, so the
last labelling round proposes exactly the offline label for every unit."""

import pytest

from rtclass.bench.live_labels import live_against_offline
from rtclass.cell_types import UNLABELED
from rtclass.classify.model import default_model
from rtclass.errors import InputError

#: long enough for most units to reach the labeller's minimum of spikes
DURATION_S = 30.0
SEED = 7


@pytest.mark.timeout(300)
def test_the_last_proposal_is_the_offline_label_of_the_same_spikes():
    model = str(default_model(layers_known=False))
    res = live_against_offline(DURATION_S, SEED, model, layers=False, spike_filter="off")
    assert res["units_with_features"] >= 10
    assert res["live_proposal_equals_offline_label"] == 1.0
    assert res["units_labelled_as_different_types_live_and_offline"] == 0
    assert len(res["per_unit"]) == res["units_with_features"]
    labelled = [u for u in res["per_unit"] if u["live_label"] != UNLABELED]
    assert len(labelled) == res["units_labelled"] > 0
    right = sum(u["live_label"] == u["cell_type"] for u in labelled) / len(labelled)
    assert right == pytest.approx(res["labels_right_vs_ground_truth"])
    assert sum(t["units"] for t in res["by_type"].values()) == res["units_with_features"]


def test_a_run_too_short_for_any_unit_is_an_error_not_an_empty_result():
    with pytest.raises(InputError, match="no unit reached"):
        live_against_offline(0.5, SEED, str(default_model(layers_known=False)), False, "off")
