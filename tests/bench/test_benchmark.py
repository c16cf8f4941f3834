"""`rtclass bench` runs end to end (a tiny smoke run: CI checks that it works, not its timings)."""

import json
import subprocess
import sys


def test_bench_smoke(tmp_path):
    out = tmp_path / "bench.json"
    res = subprocess.run(
        [sys.executable, "-m", "rtclass.cli", "bench", "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    r = json.loads(out.read_text())
    assert set(r) >= {"machine", "throughput", "chunk_times", "transport_floor_ms", "latency", "memory", "detection"}
    assert r["throughput"]["384"]["realtime_factor"] > 0
    assert any(v.get("spikes", 0) > 0 for v in r["latency"]["source_zmq"].values())
    assert "real time" in res.stdout
