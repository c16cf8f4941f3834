"""What the browser view costs the hot path: the same live run (a simulated 384-channel recording
replayed from file at real time, `rtclass run --speed 1`) without the view, with the view's
process (`--view`), and with the view and a headless Chromium showing the page, interleaved
(A B C A B C ...) so the machine's drift falls on all three alike. Per run: per-chunk p50/p99,
spike -> publish lag p50/p99 (metrics.json), real-time factor, units found.

    python benchmarks/bench_view.py [--duration 30] [--repeats 2]

Needs Chromium (/usr/bin/chromium) and the playwright package (the dev extra) for the third case.
Saves benchmarks/results/view_cost.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from rtclass.bench.benchmark import machine, save_json

RESULTS = Path(__file__).parent / "results" / "view_cost.json"
RTCLASS = str(Path(sys.executable).with_name("rtclass"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
VIEW_PORT = 8070
RECORDING_SEED = 7
CASES = ("no view", "view process", "view + browser")


def _browse(url: str, stop: threading.Event, seen: dict) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url)
        while not stop.wait(1.0):
            seen["marks"] = page.eval_on_selector_all("#probe circle.unit", "e => e.length")
        browser.close()


def one_run(recording: Path, duration_s: float, case: str, out: Path) -> dict:
    cmd = [RTCLASS, "run", "--source", f"file:{recording}", "--speed", "1", "--duration", str(duration_s)]
    cmd += ["--out", str(out)]
    if case != "no view":
        cmd += ["--view", str(VIEW_PORT)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop, seen, browser = threading.Event(), {}, None
    for line in proc.stdout:
        if line.startswith("live view: ") and case == "view + browser":
            browser = threading.Thread(target=_browse, args=(line.split(": ", 1)[1].strip(), stop, seen))
            browser.start()
    proc.wait()
    stop.set()
    if browser is not None:
        browser.join()
    m = json.loads((out / "metrics.json").read_text())
    total = m["stage_time_per_chunk"]["total"]
    return {
        "case": case,
        "chunk_p50_us": total["p50_us"],
        "chunk_p99_us": total["p99_us"],
        "publish_lag_p50_ms": m["publish_lag_ms"]["p50"],
        "publish_lag_p99_ms": m["publish_lag_ms"]["p99"],
        "realtime_factor": m["realtime_factor"],
        "units": m["units"],
        "samples_dropped": m["samples_dropped"],
        "unit_marks_in_browser": seen.get("marks"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        rec_dir = Path(tmp) / "rec"
        subprocess.run(
            [RTCLASS, "simulate", "--out", str(rec_dir), "--duration", str(args.duration + 2)]
            + ["--seed", str(RECORDING_SEED)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        recording = next(rec_dir.glob("*.ap.bin"))
        for r in range(args.repeats):
            for case in CASES:
                run = one_run(recording, args.duration, case, Path(tmp) / f"out-{r}-{CASES.index(case)}")
                print(json.dumps(run), flush=True)
                runs.append(run)
                time.sleep(2)
    summary = {}
    for case in CASES:
        rows = [r for r in runs if r["case"] == case]
        summary[case] = {
            k: float(np.median([r[k] for r in rows])) for k in rows[0] if k not in ("case",) and rows[0][k] is not None
        }
    base = summary["no view"]
    for case in CASES[1:]:
        for k in ("chunk_p50_us", "chunk_p99_us", "publish_lag_p99_ms"):
            summary[case][f"{k}_ratio_to_no_view"] = summary[case][k] / base[k] if base[k] else None
    doc = {"machine": machine(), "duration_s": args.duration, "repeats": args.repeats, "runs": runs, "median": summary}
    save_json(doc, RESULTS)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
