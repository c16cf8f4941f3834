"""Several live probes on one machine, measured (not extrapolated): N concurrent `rtclass run`
processes, each fed by its own `rtclass replay` of the same simulated 384-channel recording over
ZMQ at real time, optionally beside other busy processes; the measurement is
``rtclass.bench.live_probes`` (``rtclass bench`` runs a shorter series of it).

    python benchmarks/bench_live_probes.py [--probes 1 2 4] [--busy 0 1] [--duration 60]
        [--chunk-ms 1] [--set 'source.batch_ms = 10'] [--run 'realtime_priority = 50']

Saves benchmarks/results/live_probes.json.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

from rtclass.bench.benchmark import machine, save_json
from rtclass.bench.live_probes import measure

RESULTS = Path(__file__).parent / "results" / "live_probes.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument(
        "--chunk-ms", type=float, nargs="+", default=[1.0], help="the senders' chunk lengths, one series each"
    )
    ap.add_argument("--work", default=None, help="folder for recordings and outputs (default: a temporary one)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="'KEY = VALUE'",
        help="an extra [run] line for every probe's config, {probe} = its index (e.g. 'realtime_priority = 50')",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="'SECTION.KEY = VALUE'",
        help="a setting of another section for every probe's config (TOML value), e.g. "
        "'matching.late_window_post_ms = 0'",
    )
    args = ap.parse_args()
    # a terminated benchmark still stops its runs, senders and busy loops (run_case's finally)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = Path(args.work or tempfile.mkdtemp(prefix="rtclass_probes_"))
    folder.mkdir(parents=True, exist_ok=True)
    res = measure(
        tuple(args.probes),
        tuple(args.busy),
        args.duration,
        folder,
        tuple(args.chunk_ms),
        tuple(args.run),
        tuple(args.set),
        log=lambda line: print(line, flush=True),
    )
    save_json({"machine": machine(), **res}, args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
