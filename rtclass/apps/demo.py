"""``rtclass demo``: the whole loop on the built-in simulated probe, on this machine.

A child process renders the simulated cerebellar recording and streams it over real LSL on
loopback at real-time pace; this process runs the live pipeline on that stream, shows the live
view, publishes spikes (ZMQ + LSL) and ends with detection recall and precision against the
simulator's ground truth.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import webbrowser
from dataclasses import replace
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from rtclass.apps.liveview import LiveView
from rtclass.apps.view.server import start_view_process, subscribe_address
from rtclass.config import Config, SimulateConfig, from_dict
from rtclass.errors import InputError, PublishError, StreamNotFoundError
from rtclass.evaluation.scoring import SNR_FLOOR, filtered_template_peaks, score_detection, score_sorting
from rtclass.ingest import make_source
from rtclass.ingest.base import StreamInfo
from rtclass.ingest.lsl import use_loopback_only
from rtclass.ingest.replay import paced_send
from rtclass.pipeline.live import Pipeline, compile_kernels, make_publishers
from rtclass.publish.files import write_run_output
from rtclass.publish.wire import CELL_TYPE_NAMES
from rtclass.publish.zmq_pub import ZmqSpikePublisher
from rtclass.sim.recording import Simulation
from rtclass.stage import ms_to_samples

STREAM_NAME = "rtclass-demo"
#: what the demo changes from the defaults (the shipped config `demo`, rtclass/configs/demo.toml, holds the same)
DEMO_SETTINGS: dict[str, dict[str, Any]] = {
    "source": {"lsl_loopback": True, "resolve_timeout_s": 30.0},
    "run": {"duration_s": 30.0},
    "simulate": {"seed": 7},
}
#: how often the streaming child checks, while it waits for the pipeline, that its parent lives
CONNECT_POLL_S = 0.5
#: once the streaming child has ended, the run stops after this long without data
DRAIN_AFTER_CHILD_S = 2.0
#: how many times the demo looks for its child's stream (each for ``[source] resolve_timeout_s``)
RESOLVE_ATTEMPTS = 3
#: how often the parent checks that the streaming child is alive
CHILD_POLL_S = 0.2
#: SNR bands of the final report
SNR_BANDS = ((3.0, 5.0), (5.0, 8.0), (8.0, 12.0), (12.0, np.inf))


def demo_config() -> Config:
    return from_dict(DEMO_SETTINGS)


def stream_simulation(sim_cfg: SimulateConfig, name: str, chunk_ms: float, stop, outlet_ready) -> None:
    """Child process: render the simulation and push it to an LSL outlet in real time, once the
    pipeline has connected (``outlet_ready`` is set when the outlet can be found)."""
    use_loopback_only()
    import pylsl

    from rtclass.ingest.lsl import LslRawSender

    sim = Simulation(sim_cfg)
    chunk = max(1, ms_to_samples(chunk_ms, sim.fs))
    sim.synthesizer().read(1)  # compile the synthesis kernels while the parent compiles its own
    sender = LslRawSender(name, sim.n_channels, sim.fs, chunk)
    outlet_ready.set()
    parent_pid = os.getppid()
    # the pipeline connects once its kernels are ready: wait as long as that takes, while the parent lives
    while not sender.wait_for_subscriber(CONNECT_POLL_S):
        if stop.is_set() or os.getppid() != parent_pid:  # asked to stop, or orphaned
            sender.close(drain_s=0.0)
            return
    syn = sim.synthesizer()
    paced_send(syn.blocks(chunk), sender.send, sim.fs, 1.0, pylsl.local_clock, _EventAdapter(stop))
    sender.close()


class _EventAdapter:
    """multiprocessing.Event seen as the threading.Event paced_send expects."""

    def __init__(self, event):
        self._event = event

    def is_set(self) -> bool:
        return self._event.is_set()


def _publishers(cfg: Config, console: Console):
    try:
        return make_publishers(cfg, STREAM_NAME)
    except PublishError as exc:
        console.print(f"[yellow]{exc}; publishing on a free port instead[/yellow]")
        return make_publishers(cfg, STREAM_NAME, zmq_address="tcp://127.0.0.1:*")


def run_demo(
    cfg: Config | None = None,
    duration_s: float | None = None,
    out_dir: str | None = None,
    console: Console | None = None,
    view_port: int | None = None,
) -> dict[str, Any]:
    """``view_port``: also serve the browser view (on that port, or a free one if it is busy)."""
    cfg = cfg or demo_config()
    console = console or Console()
    duration = duration_s if duration_s is not None else cfg.run.duration_s
    use_loopback_only()
    sim_cfg = replace(cfg.simulate, duration_s=duration + 1.0)  # a little more than we consume
    sim = Simulation(sim_cfg)
    console.print(
        f"[bold]rtclass demo[/bold]: simulated {sim_cfg.probe} probe, {len(sim.units)} units "
        f"({', '.join(f'{n} {t}' for t, n in _counts(sim).items())}), streamed over LSL on loopback"
    )
    ctx = mp.get_context("spawn")
    stop, outlet_ready = ctx.Event(), ctx.Event()
    child = ctx.Process(
        target=stream_simulation, args=(sim_cfg, STREAM_NAME, cfg.source.chunk_ms, stop, outlet_ready), daemon=True
    )
    child.start()

    def announce(message: str) -> None:
        console.print(f"[cyan]{message}[/cyan]")

    # the kernels are compiled before the pipeline connects: the stream starts when it can be processed
    compile_kernels(cfg, sim.probe, sim.fs, announce)
    pipe = Pipeline(cfg, make_source(f"lsl:{STREAM_NAME}", cfg), probe=sim.probe)
    pipe.announce = announce
    run_stop = threading.Event()
    watcher = threading.Thread(target=_stop_when_child_ends, args=(child, pipe, run_stop), daemon=True)
    try:
        while not outlet_ready.wait(CHILD_POLL_S):  # the child renders and compiles its own kernels first
            if not child.is_alive():
                raise InputError(_child_ended(child, 0.0, duration))
        info = _open_while_child_streams(pipe, child, announce)
        pipe.publishers = _publishers(cfg, console)
        view_url = _start_view(pipe, view_port, console) if view_port is not None else None
        watcher.start()
        with LiveView("rtclass live", console) as view:

            def show(status):
                status.extra.update(_unit_summary(pipe))
                if view_url:
                    status.extra["browser view"] = view_url
                view.update(status)

            pipe.run(run_stop, duration_s=duration, on_status=show)
    finally:
        run_stop.set()
        pipe.close()
        stop.set()
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()
    metrics = pipe.metrics()
    if metrics["data_s"] < duration:
        console.print(f"[bold red]{_child_ended(child, metrics['data_s'], duration)}[/bold red]")
        metrics["stream_ended_early"] = True
    metrics["detection"] = _score(pipe, sim)
    metrics["labelling"] = _score_labels(pipe, sim)
    if out_dir is not None:
        write_run_output(out_dir, pipe.log, info, metrics, pipe.unit_outputs())
    _report(console, metrics, pipe, sim)
    return metrics


def _start_view(pipe: Pipeline, port: int, console: Console) -> str | None:
    """The browser view in its own process, on the demo's ZMQ topics; opened in a browser where
    this machine has a screen."""
    zmq_pub = next((p for p in pipe.publishers if isinstance(p, ZmqSpikePublisher)), None)
    if zmq_pub is None:
        console.print("[yellow]no browser view: it reads the ZMQ topics, and [publish] zmq is off[/yellow]")
        return None
    _, url = start_view_process(subscribe_address(zmq_pub.endpoint), port)
    console.print(f"[bold]live view:[/bold] {url}  (open it in a browser on this machine)")
    if has_screen():
        webbrowser.open(url)
    return url


def has_screen() -> bool:
    """Whether a browser opened from here would be seen (a desktop session, not a headless box or CI)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open_while_child_streams(pipe: Pipeline, child, announce) -> StreamInfo:
    """Open the pipeline on the child's stream. The child's outlet exists (it said so), so a
    resolve that times out on a loaded machine is tried again as long as the child lives."""
    attempt = 1
    while True:
        try:
            return pipe.open()
        except StreamNotFoundError as exc:
            if not child.is_alive() or attempt == RESOLVE_ATTEMPTS:
                state = "still running" if child.is_alive() else f"ended (exit code {child.exitcode})"
                raise StreamNotFoundError(f"{exc} [the demo's streaming process: {state}]") from exc
            announce(f"the demo's stream was not found yet (try {attempt} of {RESOLVE_ATTEMPTS}); looking again")
            attempt += 1


def _stop_when_child_ends(child, pipe: Pipeline, run_stop: threading.Event) -> None:
    """Stops the run once the streaming child has ended (or died) and its last data has been
    processed: without this, a pipeline on a stream that stopped would wait for it forever."""
    while not run_stop.wait(CHILD_POLL_S):
        if child.is_alive():
            continue
        seen = pipe.samples_processed
        while not run_stop.wait(DRAIN_AFTER_CHILD_S):
            if pipe.samples_processed == seen:
                run_stop.set()
                return
            seen = pipe.samples_processed
        return


def _child_ended(child, data_s: float, duration_s: float) -> str:
    code = child.exitcode
    how = "died" if code not in (None, 0) else "ended"
    return (
        f"the demo's streaming process {how} (exit code {code}) after {data_s:.1f} s of the {duration_s:g} s asked "
        "for; its error, if any, is printed above. Run `rtclass demo` again; if it fails the same way, report it."
    )


def _counts(sim: Simulation) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in sim.cell_types():
        out[t] = out.get(t, 0) + 1
    return out


def _score(pipe: Pipeline, sim: Simulation) -> dict[str, Any]:
    """Detection recall/precision over the part of the stream where detection was running."""
    det = pipe.detector
    start = det.started_at + det.warmup + det.sweep
    end = pipe.samples_processed - det.sweep
    spikes = pipe.log.spikes()
    ds = spikes[(spikes["sample"] >= start) & (spikes["sample"] < end)]
    sel = (sim.spike_times >= start) & (sim.spike_times < end)
    # SNR as SpikeInterface defines it: template trough after the band-pass / the channel's
    # MAD noise level on the processed data (the detector's own estimate)
    snr, peak = filtered_template_peaks(sim.dense_templates(), det.noise_sd, pipe.cfg.preprocess, sim.fs)
    score = score_detection(
        ds["sample"],
        ds["channel"],
        sim.spike_times[sel],
        sim.spike_units[sel],
        peak,
        snr,
        sim.probe.positions_um,
        sim.fs,
    )
    out = score.as_dict()
    out["recall_by_snr"] = {
        f"{lo:g}-{hi:g}": float(score.unit_recall[(score.unit_snr >= lo) & (score.unit_snr < hi)].mean())
        for lo, hi in SNR_BANDS
        if ((score.unit_snr >= lo) & (score.unit_snr < hi)).any()
    }
    out["scored_from_sample"] = int(start)
    return out


def _unit_summary(pipe: Pipeline) -> dict[str, str]:
    bank = pipe.chain.bank
    if bank is None:
        return {}
    out = {"units": f"{bank.n} found"}
    lab = pipe.labeler
    if lab is None:
        out["labels"] = "no classifier model: unlabeled"
        return out
    codes = lab.codes
    counts = [
        f"{int((codes == c).sum())} {CELL_TYPE_NAMES[c]}" for c in range(1, len(CELL_TYPE_NAMES)) if (codes == c).any()
    ]
    out["labels"] = ", ".join(counts) if counts else "none yet (units need 100 spikes)"
    return out


def _score_labels(pipe: Pipeline, sim: Simulation) -> dict[str, Any]:
    """Labelled sorted units whose best-matching ground-truth unit has that cell type."""
    lab = pipe.labeler
    if lab is None or pipe.chain.bank is None:
        return {"labelled_units": 0}
    spikes = pipe.log.spikes()
    score = score_sorting(sim.spike_times, sim.spike_units, spikes["sample"], spikes["unit"], len(sim.units), sim.fs)
    truth = {
        int(s): sim.units[g].cell_type for g, s in enumerate(score.matched_unit) if s >= 0 and score.accuracy[g] >= 0.5
    }
    codes = lab.codes
    labelled = [u for u in range(codes.size) if codes[u] > 0]
    judged = [u for u in labelled if u in truth]
    right = [u for u in judged if CELL_TYPE_NAMES[codes[u]] == truth[u]]
    return {
        "labelled_units": len(labelled),
        "labelled_units_with_a_ground_truth_match": len(judged),
        "correct": len(right),
        "accuracy": len(right) / len(judged) if judged else float("nan"),
        "median_s_to_first_label": float(np.median(list(lab.first_labelled.values()))) if lab.first_labelled else None,
    }


def _report(console: Console, m: dict[str, Any], pipe: Pipeline, sim: Simulation) -> None:
    d = m["detection"]
    t = Table(title="rtclass demo: result", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("data processed", f"{m['data_s']:.1f} s, {m['chunks']} chunks, {m['n_channels']} channels")
    t.add_row("input problems", f"{m['samples_dropped']} samples dropped, {m['gaps']} gaps, {m['malformed']} malformed")
    tot = m["stage_time_per_chunk"]["total"]
    t.add_row(
        "processing",
        f"{m['realtime_factor']:.1f}x real time; per chunk p50 {tot['p50_us']:.0f} us, p99 {tot['p99_us']:.0f} us",
    )
    t.add_row(f"recall (SNR >= {SNR_FLOOR:g})", f"{d['recall_snr_ge_5']:.3f} over {d['units_snr_ge_5']} units")
    t.add_row("precision", f"{d['precision']:.3f} of {d['n_detections']} detections")
    for band, r in d["recall_by_snr"].items():
        t.add_row(f"recall, SNR {band}", f"{r:.3f}")
    t.add_row("units", f"{m.get('units', 0)} found")
    lab = m["labelling"]
    if lab.get("labelled_units"):
        t.add_row(
            "cell-type labels",
            f"{lab['correct']} of {lab['labelled_units_with_a_ground_truth_match']} labelled units "
            f"right ({lab['accuracy']:.2f}); {lab['labelled_units']} labelled in all",
        )
        t.add_row("labels by type", ", ".join(f"{n} {k}" for k, n in m["labels"]["units_by_type"].items() if n))
    else:
        t.add_row("cell-type labels", "none" if pipe.labeler is not None else "no classifier model")
    console.print(t)
