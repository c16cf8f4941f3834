"""``rtclass.bench.live_probes``: live probes measured side by side (one short case here: CI checks
that the measurement works and counts what it should, not its timings)."""

import json

from rtclass.bench import live_probes


def test_one_live_probe_is_measured_from_its_sender_to_a_plain_subscriber(tmp_path):
    res = live_probes.measure((1,), (0,), 16.0, tmp_path, log=lambda line: None)
    (case,) = res["cases"]
    (probe,) = case["per_probe"]
    assert probe["exit_code"] == 0 and probe["samples_in"] == 16 * 30000 and probe["samples_dropped"] == 0
    assert probe["units"] > 0 and probe["spikes_received"] > 0
    assert probe["spike_to_event_p99_ms"] >= probe["spike_to_event_p50_ms"] > 0
    split = probe["steady_cores_by_thread"]
    assert set(split) == {"main_thread", "zmq_io_threads", "other_threads", "child_processes"}
    assert split["main_thread"] > 0 and probe["steady_cores_at_real_time"] == sum(split.values())
    assert case["holds_real_time"] and res["largest_n_holding_real_time"] == {"0": 1}
    json.dumps(res)  # what the benchmarks save
    assert "1 probes + 0 busy" in live_probes.case_line(case)
