from rich.console import Console

from rtclass.apps.demo import demo_config, run_demo


def test_demo_runs_and_scores_detection(tmp_path):
    cfg = demo_config().replace(publish={"zmq_address": "tcp://127.0.0.1:*"})
    console = Console(file=open(tmp_path / "view.txt", "w"), force_terminal=False)
    m = run_demo(cfg, duration_s=3.0, out_dir=str(tmp_path / "out"), console=console)
    assert m["samples_dropped"] == 0
    assert m["data_s"] >= 3.0
    det = m["detection"]
    assert det["n_detections"] > 100
    assert det["precision"] > 0.8
    assert (tmp_path / "out" / "spike_times.npy").exists()
