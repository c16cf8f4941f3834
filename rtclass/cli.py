"""The ``rtclass`` command. Each subcommand parses its arguments and calls the library."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from rtclass import __version__
from rtclass.errors import RtclassError


def installed_version() -> str:
    """The installed distribution's version (package metadata); ``rtclass.__version__`` when not installed."""
    from importlib import metadata

    try:
        return metadata.version("rtclass")
    except metadata.PackageNotFoundError:
        return __version__


def _config(args: argparse.Namespace, base=None):
    from rtclass.config import Config, load_config

    cfg = load_config(args.config) if getattr(args, "config", None) else (base or Config())
    return cfg


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum, frame):  # noqa: ARG001
        if stop.is_set():  # a second signal: the user means it
            raise SystemExit(130)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def cmd_demo(args: argparse.Namespace) -> int:
    from rtclass.apps.demo import demo_config, run_demo

    cfg = _config(args, demo_config())
    run_demo(cfg, args.duration, args.out, view_port=None if args.no_view else args.view)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rich.progress import Progress

    from rtclass.config import build_section
    from rtclass.sim.writer import write_simulation

    cfg = _config(args)
    values = asdict(cfg.simulate)
    for key in ("duration_s", "seed", "probe", "units_per_type"):
        v = getattr(args, key)
        if v is not None:
            values[key] = v
    sim_cfg = build_section("simulate", type(cfg.simulate), values)
    if args.features_only:
        from rtclass.sim.training import write_training_set

        path = write_training_set(sim_cfg, args.out)
        print(f"wrote {path}")
        return 0
    with Progress(transient=True) as bar:
        task = bar.add_task("rendering", total=1.0)
        path, sim = write_simulation(sim_cfg, args.out, lambda done, total: bar.update(task, completed=done / total))
    print(f"wrote {path} ({sim.n_samples / sim.fs:g} s, {len(sim.units)} units) and {Path(args.out) / 'ground_truth'}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from rtclass.ingest.replay import replay_file

    cfg = _config(args)
    if args.to.startswith("lsl:") and cfg.source.lsl_loopback:
        from rtclass.ingest.lsl import use_loopback_only

        use_loopback_only()
    chunk_ms = args.chunk_ms if args.chunk_ms is not None else cfg.source.chunk_ms
    speed = args.speed if args.speed is not None else cfg.source.speed
    sent = replay_file(args.file, args.to, speed, chunk_ms, args.wait, _stop_on_signals())
    print(f"replayed {sent} samples to {args.to}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rtclass.apps.liveview import LiveView
    from rtclass.pipeline.live import run_live

    cfg = _config(args)
    changes = {}
    if args.speed is not None:
        changes["source"] = {"speed": args.speed}
    if args.duration is not None:
        changes["run"] = {"duration_s": args.duration}
    if args.templates is not None:
        changes["matching"] = {"templates": args.templates}
    if args.model is not None:
        changes["classify"] = {"model": args.model}
    if args.save_raw:
        changes.setdefault("run", {})["save_raw"] = True
    if args.zmq is not None:
        changes["publish"] = {"zmq_address": args.zmq}
    if changes:
        cfg = cfg.replace(**changes)
    stop = _stop_on_signals()
    if args.view is not None:
        _start_view(cfg, args.view)
    with LiveView(f"rtclass run {args.source}") as view:
        metrics = run_live(cfg, args.source, args.out, stop, view.update)
    print(
        f"processed {metrics['data_s']:.1f} s ({metrics['realtime_factor'] or 0:.1f}x real time), "
        f"{metrics['spikes']} spikes, {metrics['samples_dropped']} samples dropped; wrote {args.out}"
    )
    return 0


def _start_view(cfg, port: int) -> None:
    """The browser view in its own process, subscribed to the run's ZMQ topics."""
    from rtclass.apps.view.server import start_view_process, subscribe_address
    from rtclass.errors import ConfigError

    if not cfg.publish.zmq:
        raise ConfigError("--view reads the run's ZMQ topics: set [publish] zmq = true")
    _, url = start_view_process(subscribe_address(cfg.publish.zmq_address), port)
    print(f"live view: {url}", flush=True)


def cmd_rig(args: argparse.Namespace) -> int:
    from rtclass.apps.rig import Rig, health_line, load_rig

    rig = Rig(load_rig(args.rig_file))
    stop = _stop_on_signals()
    last = [0.0]

    def show(health) -> None:
        import time

        if time.monotonic() - last[0] >= args.status_s:
            print(health_line(health), flush=True)
            last[0] = time.monotonic()

    try:
        health = rig.run(stop, show)
    finally:
        rig.close()
    print(health_line(health))
    failed = [pid for pid, h in health["probes"].items() if h["state"] == "failed"]
    return 1 if failed else 0


def cmd_view(args: argparse.Namespace) -> int:
    from rtclass.apps.view.server import serve_view

    serve_view(args.address, args.port, _stop_on_signals(), lambda url: print(f"live view: {url}", flush=True))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from rtclass.classify.offline import classify_folder, layer_file, load_model_or_none
    from rtclass.classify.phy_features import extract_features
    from rtclass.errors import InputError

    # fail on a bad model before the long feature pass
    model = load_model_or_none(args.model, args.classifier, layers_known=layer_file(args.folder).exists())
    with Progress(transient=True) as bar:
        task = bar.add_task("features", total=1.0)
        feats = extract_features(
            args.folder,
            lambda k, n: bar.update(task, completed=k / n),
            spike_filter=args.spike_filter == "c4",
            min_good_s=args.min_good_s,
        )
    print(
        f"{feats.cluster_id.size} clusters with features (waveforms from {feats.waveform_source}), "
        f"{len(feats.skipped)} skipped; C4's spike filter left out some spikes of {len(feats.spikes_left_out)} clusters"
    )
    if feats.cluster_id.size == 0:
        filtered = [why for why in feats.skipped.values() if "spike filter" in why]
        advice = (
            f"; {len(filtered)} by C4's spike filter (e.g. {filtered[0]!r}), which judges whole minutes of "
            f"recording in 30 s windows and needs more than {args.min_good_s:g} s of good sections: "
            "--min-good-s lowers that, --spike-filter off uses every spike"
            if filtered
            else ""
        )
        raise InputError(f"no cluster of {args.folder} has features: all {len(feats.skipped)} were skipped{advice}")
    if args.save_features:
        feats.save(args.save_features)
        print(f"saved {args.save_features}")
    if model is None:
        print("no classifier model found: features only (cluster_predicted_cell_type.tsv not written)")
        return 0
    counts = classify_folder(args.folder, feats, model, args.threshold or model.confidence_ratio)
    print(f"labels ({model.path}): " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    print(
        "wrote cluster_predicted_cell_type.tsv, cluster_pred_probability.tsv, cluster_confidence_ratio.tsv "
        f"in {args.folder}"
    )
    return 0


def cmd_import_c4(args: argparse.Namespace) -> int:
    from rtclass.classify.c4_import import import_c4

    info = import_c4(args.archive, args.out, args.hessians)
    print(f"wrote {args.out}: {info['summary']} Calibration: {info['calibration']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from rtclass.classify.train import train_command

    with Progress(transient=True) as bar:
        task = bar.add_task("training", total=1.0)
        results = train_command(
            args.data,
            args.out,
            args.eval or [],
            args.members,
            args.epochs,
            args.seed,
            args.layer,
            lambda k, n: bar.update(task, completed=k / n),
            augment=not args.no_randomisation,
        )
    for name, ev in results.items():
        print(f"{name}: balanced accuracy {ev['balanced_accuracy']:.3f} on {ev['units']} units ({ev['description']})")
    print(f"wrote {args.out}/model.onnx and its model card")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rtclass.bench.benchmark import run_bench, table

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    res = run_bench(mode, args.out, args.plots, lambda m: print(m, flush=True))
    print(table(res))
    if args.out:
        print(f"saved {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from rtclass.config import CLASSIFIER_CHOICES, SPIKE_FILTER_CHOICES, shipped_config_names
    from rtclass.features.spike_quality import C4_MIN_GOOD_S

    config_help = f"TOML config: a file, or the name of a shipped config ({', '.join(shipped_config_names())})"
    p = argparse.ArgumentParser(prog="rtclass", description="Real-time cell-type labels for Neuropixels probes.")
    p.add_argument("--version", action="version", version=f"rtclass {installed_version()}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    from rtclass.apps.view.server import DEFAULT_VIEW_PORT

    sub = p.add_subparsers(dest="command", required=True)
    view_help = (
        f"serve the live probe view on http://127.0.0.1:PORT/ (default {DEFAULT_VIEW_PORT}; a busy port: a free one)"
    )

    d = sub.add_parser("demo", help="the whole loop on the built-in simulated probe")
    d.add_argument("--duration", type=float, default=None, help="seconds of data (default 30)")
    d.add_argument("--config", help=f"{config_help} (default: the settings of the shipped config demo)")
    d.add_argument("--out", help="also write the run's output files here")
    d.add_argument("--view", type=int, default=DEFAULT_VIEW_PORT, metavar="PORT", help=view_help)
    d.add_argument("--no-view", dest="no_view", action="store_true", help="no browser view")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("simulate", help="write a simulated recording (SpikeGLX) and its ground truth")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--duration", dest="duration_s", type=float, help="seconds (default 60)")
    s.add_argument("--seed", type=int)
    s.add_argument("--probe", choices=("np1", "np2"))
    s.add_argument("--units-per-type", dest="units_per_type", type=int, help="N units of every cell type")
    s.add_argument("--config", help=f"{config_help}; its [simulate] section is used")
    s.add_argument(
        "--features-only",
        dest="features_only",
        action="store_true",
        help="write only the units' C4 features (a classifier training set), no recording",
    )
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("replay", help="publish a recording as a live stream")
    r.add_argument("file", help="a SpikeGLX .ap.bin (its .meta beside it)")
    r.add_argument("--to", required=True, help="lsl:NAME or zmq://127.0.0.1:PORT")
    r.add_argument("--speed", type=float, help="1 = real time (default), 0 = as fast as possible")
    r.add_argument("--chunk-ms", dest="chunk_ms", type=float, help="chunk length (default 1 ms)")
    r.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a subscriber")
    r.add_argument("--config", help=config_help)
    r.set_defaults(func=cmd_replay)

    u = sub.add_parser("run", help="run the live pipeline on a stream or file")
    u.add_argument(
        "--source", required=True, help="lsl:NAME | zmq://HOST:PORT | openephys://HOST:PORT | file:PATH.ap.bin"
    )
    u.add_argument("--config", help=config_help)
    u.add_argument("--speed", type=float, help="file sources: 1 = real time, 0 = as fast as possible")
    u.add_argument("--duration", type=float, help="stop after this many seconds of data")
    u.add_argument(
        "--templates", help="a Kilosort/phy folder: its templates identify the units (else discovered online)"
    )
    u.add_argument("--model", help="ONNX classifier (default: the shipped model; 'none': no labels)")
    u.add_argument("--save-raw", dest="save_raw", action="store_true", help="also save the stream (raw.bin) for phy")
    u.add_argument("--out", required=True, help="folder for the output files")
    u.add_argument("--view", type=int, nargs="?", const=DEFAULT_VIEW_PORT, metavar="PORT", help=view_help)
    u.add_argument("--zmq", metavar="ADDRESS", help="where the ZMQ PUB binds (as [publish] zmq_address)")
    u.set_defaults(func=cmd_run)

    g = sub.add_parser("rig", help="one supervised `rtclass run` per probe, with a combined unit table")
    g.add_argument("rig_file", help="a rig TOML file: [rig] out, address; one [[probe]] per probe")
    g.add_argument("--status-s", dest="status_s", type=float, default=5.0, help="seconds between health lines")
    g.set_defaults(func=cmd_rig)

    w = sub.add_parser("view", help="the live probe view in a browser, for a running pipeline")
    w.add_argument("address", nargs="?", default="tcp://127.0.0.1:5560", help="the pipeline's ZMQ PUB address")
    w.add_argument("--port", type=int, default=DEFAULT_VIEW_PORT, help="HTTP port on 127.0.0.1")
    w.set_defaults(func=cmd_view)
    c = sub.add_parser("classify", help="C4 features (and cell types) of a Kilosort/phy folder, offline")
    c.add_argument("folder", help="Kilosort/phy output folder")
    c.add_argument("--save-features", dest="save_features", help="write cluster_id, acg3d, waveform to this .npz")
    c.add_argument("--model", help="ONNX classifier (default: the shipped model; 'none': features only)")
    c.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        help="confidence ratio below which a unit stays unlabeled (default: the one the model card calibrated)",
    )
    c.add_argument(
        "--classifier",
        choices=CLASSIFIER_CHOICES,
        default=CLASSIFIER_CHOICES[0],
        help="the network, the physiology baseline beside it, or (auto) the one its model card found better",
    )
    c.add_argument(
        "--spike-filter",
        dest="spike_filter",
        choices=SPIKE_FILTER_CHOICES,
        default=SPIKE_FILTER_CHOICES[0],
        help="c4: 3D-ACGs from the spikes C4's filter keeps (few refractory violations and missed spikes, "
        "judged on amplitudes.npy), clusters with too few skipped; off: every spike",
    )
    c.add_argument(
        "--min-good-s",
        dest="min_good_s",
        type=float,
        default=C4_MIN_GOOD_S,
        help="seconds of good sections a cluster needs under the c4 spike filter (C4's %(default)g)",
    )
    c.set_defaults(func=cmd_classify)

    t = sub.add_parser(
        "train", help="train a cell-type classifier ensemble and export it to ONNX (needs extra 'train')"
    )
    t.add_argument("--data", nargs="+", required=True, help="training sets (folders with features.npz)")
    t.add_argument("--eval", nargs="*", help="held-out sets to report accuracy on")
    t.add_argument("--out", required=True, help="model folder (model.onnx, model_card.json/.md, metrics.json)")
    t.add_argument("--members", type=int, default=5, help="ensemble size")
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--layer", action="store_true", help="also feed the layer one-hot")
    t.add_argument(
        "--no-randomisation",
        dest="no_randomisation",
        action="store_true",
        help="train without the per-batch randomisation of waveform widths, positivity and rates",
    )
    t.set_defaults(func=cmd_train)

    i = sub.add_parser("import-c4", help="convert a published C4 ensemble (trained_models.tar.gz) to ONNX")
    i.add_argument("archive", help="C4's trained_models.tar.gz")
    i.add_argument("--hessians", help="C4's hessians.pt: bake its Laplace calibration into the graph")
    i.add_argument("--out", required=True, help="the .onnx file to write (model_card.json beside it)")
    i.set_defaults(func=cmd_import_c4)

    b = sub.add_parser(
        "bench", help="measure throughput, latency, live probes side by side, inference time and memory here"
    )
    b.add_argument("--out", help="save the results as JSON")
    b.add_argument("--plots", help="folder for PNG plots (needs matplotlib, extra 'plots')")
    b.add_argument("--quick", action="store_true", help="a shorter run (about 2.5 minutes)")
    b.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # CI: does it all run
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except RtclassError as exc:
        print(f"rtclass: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
