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


def test_the_first_demo_on_an_empty_cache_compiles_once_and_finishes(tmp_path):
    """The README's first command on a fresh machine: no Numba cache, a fresh HOME. The kernels
    compile before the stream starts (it used to start first, give up, and leave the pipeline
    waiting forever); the run says it is compiling and how long it took."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    rtclass_cli = Path(sys.executable).with_name("rtclass")
    done = subprocess.run(
        [str(rtclass_cli), "demo", "--duration", "3"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=400,
        stdin=subprocess.DEVNULL,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "compiling the signal kernels" in out and "kernels ready in" in out
    assert out.count("compiling the signal kernels") == 1
    assert "3.0 s, " in out  # all 3 s of the stream processed ("data processed" row)
    assert "0 samples dropped" in out
    assert any((tmp_path / "numba-cache").rglob("*.nbi")), "nothing was cached for the next start"


class _EndedChild:
    def __init__(self, exitcode):
        self.exitcode = exitcode

    def is_alive(self):
        return False


class _StalledPipeline:
    samples_processed = 12345


def test_a_streaming_child_that_dies_ends_the_run_with_a_clear_message():
    import threading
    import time

    from rtclass.apps import demo

    run_stop = threading.Event()
    t0 = time.monotonic()
    demo._stop_when_child_ends(_EndedChild(1), _StalledPipeline(), run_stop)
    assert run_stop.is_set()
    assert time.monotonic() - t0 < demo.DRAIN_AFTER_CHILD_S + 2 * demo.CHILD_POLL_S + 1.0
    message = demo._child_ended(_EndedChild(1), 1.2, 30.0)
    assert "died (exit code 1)" in message and "1.2 s of the 30 s" in message
    assert "ended (exit code 0)" in demo._child_ended(_EndedChild(0), 29.0, 30.0)
