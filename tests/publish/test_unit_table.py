"""The unit table (``rtclass.publish.unit_table``), published as JSON on topic ``units``: one row
per unit with the fields the wire format documents (README, "Wire format v1"), running counts,
amplitudes and rates, merges, and labels when a model is loaded."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from rtclass.cell_types import CELL_TYPES
from rtclass.client import UnitTable as ClientTable
from rtclass.matching.matcher import ASSIGNED_DTYPE
from rtclass.matching.templates import TemplateBank
from rtclass.probe import Probe
from rtclass.publish.unit_table import UnitTable

FS = 30000.0
#: the row fields README's wire format lists; ``probabilities`` only when a model is loaded
DOCUMENTED = {
    "id",
    "peak_channel",
    "x_um",
    "y_um",
    "mean_amplitude_uv",
    "spike_count",
    "firing_rate_hz",
    "merged_into",
    "late_decision_ms",
    "cell_type",
    "cell_type_code",
    "confidence",
}


def _bank():
    probe = Probe("t", np.stack([np.tile([0.0, 32.0], 6), 20.0 * np.arange(12)], 1))
    bank = TemplateBank(probe, 20, 8, 30.0, 50.0)
    for uid, peak in ((4, 2), (9, 7), (11, 10)):
        chans = bank.local_channels(peak)
        w = np.zeros((20, chans.size), np.float32)
        w[8] = -50.0
        bank.add(w, peak, uid)
    return bank


def _spikes(samples, units, fits):
    s = np.zeros(len(samples), ASSIGNED_DTYPE)
    s["sample"], s["unit"], s["fit"] = samples, units, fits
    return s


def test_rows_have_the_documented_fields_and_running_statistics():
    bank = _bank()
    table = UnitTable(bank, FS)
    table.update(_spikes([30000, 30100, 45000], [4, -1, 4], [100.0, 999.0, 80.0]))  # unit -1 is not a unit
    table.update(_spikes([60000], [9], [50.0]))
    rows = {r["id"]: r for r in table.rows(now_sample=90000)}
    assert list(rows) == [4, 9, 11]  # every unit of the bank, in bank order, spikes or not
    for r in rows.values():
        assert set(r) == DOCUMENTED
    r4 = rows[4]
    assert r4["peak_channel"] == 2 and (r4["x_um"], r4["y_um"]) == (0.0, 40.0)
    assert r4["spike_count"] == 2 and r4["mean_amplitude_uv"] == pytest.approx(90.0)
    assert r4["firing_rate_hz"] == pytest.approx(2 / 2.0)  # 2 spikes over 2 s since its first
    assert rows[9]["firing_rate_hz"] == pytest.approx(1 / 1.0)
    assert rows[11]["spike_count"] == 0 and rows[11]["firing_rate_hz"] == 0.0
    assert rows[11]["mean_amplitude_uv"] == 0.0
    assert r4["merged_into"] is None and r4["cell_type"] == "unlabeled" and r4["cell_type_code"] == 0
    assert r4["confidence"] == 0.0


def test_the_version_changes_when_a_unit_first_fires():
    table = UnitTable(_bank(), FS)
    table.update(_spikes([], [], []))
    assert table.version == 0
    table.update(_spikes([10, 20], [4, 9], [1.0, 1.0]))
    assert table.version == 2
    table.update(_spikes([30], [4], [1.0]))
    assert table.version == 2  # a known unit's spikes: same table version


def test_a_merged_unit_names_the_unit_its_spikes_now_go_to():
    bank = _bank()
    bank.retire(11, 9)
    rows = {r["id"]: r for r in UnitTable(bank, FS).rows(0)}
    assert rows[11]["merged_into"] == 9 and rows[9]["merged_into"] is None


def test_labels_and_probabilities_come_from_the_labeler():
    labeler = SimpleNamespace(
        model=SimpleNamespace(classes=CELL_TYPES),
        probabilities={9: [0.05, 0.8, 0.05, 0.05, 0.05]},
        label_of=lambda ids: (np.where(ids == 9, 2, 0).astype(np.int16), np.where(ids == 9, 16.0, 0.0)),
    )
    table = UnitTable(_bank(), FS, labeler)
    rows = {r["id"]: r for r in table.rows(0)}
    assert set(rows[9]) == DOCUMENTED | {"probabilities"}
    assert (rows[9]["cell_type"], rows[9]["cell_type_code"], rows[9]["confidence"]) == ("PkC_cs", 2, 16.0)
    assert rows[9]["probabilities"] == dict(zip(CELL_TYPES, [0.05, 0.8, 0.05, 0.05, 0.05]))
    assert rows[4]["cell_type"] == "unlabeled" and rows[4]["probabilities"] == {}


def test_the_json_is_what_the_client_reads():
    bank = _bank()
    table = UnitTable(bank, FS)
    table.update(_spikes([300], [9], [70.0]))
    payload = table.to_json(now_sample=3000)
    doc = json.loads(payload.decode("utf-8"))
    assert set(doc) == {"units", "sample", "sample_rate_hz", "probe"} and doc["sample"] == 3000
    assert doc["sample_rate_hz"] == FS
    probe = bank.probe
    assert doc["probe"]["name"] == probe.name and np.allclose(doc["probe"]["positions_um"], probe.positions_um)
    assert doc["probe"]["contact_width_um"] == probe.contact_width_um
    client = ClientTable()
    client.update(payload)
    assert client.sample == 3000 and set(client.units) == {4, 9, 11}
    assert client.units[9]["spike_count"] == 1 and client.of_type("unlabeled") == [4, 9, 11]
