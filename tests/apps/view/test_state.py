"""The view's state, fed the messages a pipeline publishes (no sockets)."""

import json

import numpy as np

from rtclass.apps.view.state import MAX_SPIKES_PER_UPDATE, RASTER_WINDOW_S, ViewState, page_constants
from rtclass.cell_types import CELL_TYPE_NAMES
from rtclass.publish.wire import (
    FEATURES_DTYPE,
    FEATURES_TOPIC,
    SPIKE_DTYPE,
    STATUS_TOPIC,
    UNITS_TOPIC,
    encode_spikes,
    spike_topic,
)

FS = 30000.0


def _table(units, with_probe=True):
    doc = {"units": units, "sample": 0, "sample_rate_hz": FS}
    if with_probe:
        doc["probe"] = {"name": "np1", "contact_width_um": 12.0, "positions_um": [[16.0, 0.0], [48.0, 0.0]]}
    return [UNITS_TOPIC, json.dumps(doc).encode()]


def _spikes(samples, unit=3, code=2):
    rec = np.zeros(len(samples), SPIKE_DTYPE)
    rec["sample"], rec["unit"], rec["cell_type"] = samples, unit, code
    return [spike_topic(code), encode_spikes(rec)]


def _unit(uid, code=2):
    return {
        "id": uid,
        "peak_channel": 1,
        "x_um": 48.0,
        "y_um": 0.0,
        "cell_type": CELL_TYPE_NAMES[code],
        "cell_type_code": code,
        "confidence": 3.0,
        "firing_rate_hz": 1.0,
        "spike_count": 10,
        "merged_into": None,
    }


def test_a_browser_gets_everything_first_then_only_what_changed():
    state = ViewState("tcp://127.0.0.1:1")
    state.ingest(_table([_unit(3)]))
    state.ingest([STATUS_TOPIC, json.dumps({"data_s": 1.5, "samples_dropped": 0}).encode()])
    state.ingest(_spikes([100, 200, 300]))
    first, cursor = state.update_since(0, -1, with_probe=True)
    assert [u["id"] for u in first["units"]] == [3] and first["probe"]["name"] == "np1"
    assert first["spikes"] == [[100, 3, 2], [200, 3, 2], [300, 3, 2]]
    assert first["status"]["data_s"] == 1.5 and not first["silent"]
    state.ingest(_spikes([400]))
    second, cursor = state.update_since(cursor, first["units_version"], with_probe=False)
    assert second["spikes"] == [[400, 3, 2]]
    assert "units" not in second and "probe" not in second  # unchanged: not sent again
    third, _ = state.update_since(cursor, first["units_version"], with_probe=False)
    assert third["spikes"] == []


def test_the_raster_keeps_only_the_last_window():
    state = ViewState()
    state.ingest(_table([_unit(3)]))
    window = int(RASTER_WINDOW_S * FS)
    state.ingest(_spikes([10, 20]))
    state.ingest(_spikes([window + 100]))  # the first two are now older than the window
    update, _ = state.update_since(0, -1, with_probe=False)
    assert [s[0] for s in update["spikes"]] == [window + 100]


def test_a_burst_of_spikes_is_thinned_and_the_thinning_counted():
    state = ViewState()
    n = MAX_SPIKES_PER_UPDATE + 500
    state.ingest(_spikes(np.arange(n)))
    update, _ = state.update_since(0, -1, with_probe=False)
    assert len(update["spikes"]) == MAX_SPIKES_PER_UPDATE and update["spikes_thinned"] == 500
    assert update["spikes"][0][0] == 0 and update["spikes"][-1][0] == n - 1  # evenly over the burst


def test_malformed_messages_are_counted_with_the_last_error_and_nothing_raises():
    state = ViewState()
    state.ingest([b"spikes/MLI", b"\x00" * 27])  # not whole 28-byte records
    state.ingest([UNITS_TOPIC, b"{not json"])
    state.ingest([STATUS_TOPIC, b"[1, 2]"])
    state.ingest([b"only one frame"])
    state.ingest(_table([_unit(1)]))
    update, _ = state.update_since(0, -1, with_probe=True)
    assert update["view"]["messages"] == 5 and update["view"]["malformed"] == 4
    assert "frames" in update["view"]["last_error"]
    assert [u["id"] for u in update["units"]] == [1]  # the good message still counts


def test_without_status_the_pipeline_is_shown_silent():
    update, _ = ViewState().update_since(0, -1, with_probe=True)
    assert update["silent"] and update["status_age_s"] is None


def test_a_units_features_are_its_waveform_and_acg_on_the_lags_of_the_wire():
    state = ViewState()
    rec = np.zeros(2, FEATURES_DTYPE)
    rec["unit"] = [4, 9]
    rec["waveform"][0, 30] = -1.0
    rec["acg3d"][0, :, 50] = 0.5
    state.ingest(_table([_unit(4), _unit(9)]))
    state.ingest([FEATURES_TOPIC, rec.tobytes()])
    d = state.unit_detail(4)
    assert d["waveform"][30] == -1.0 and len(d["waveform"]) == rec["waveform"].shape[1]
    assert np.array(d["acg3d"]).shape == rec["acg3d"].shape[1:]
    assert d["acg_mean"][50] == 0.5 and len(d["lags_ms"]) == rec["acg3d"].shape[2]
    assert d["lags_ms"][0] == 0.0 and d["lags_ms"][1] == 1.0 and d["lags_ms"][-1] == 1000.0
    assert d["unit"]["id"] == 4
    assert state.unit_detail(5) is None


def test_the_page_gets_one_colour_per_cell_type_in_wire_order():
    c = page_constants()
    assert c["cell_types"] == list(CELL_TYPE_NAMES) and len(set(c["colours"])) == len(CELL_TYPE_NAMES)
