"""Where a live probe's CPU goes, without the network: the whole pipeline (online discovery, the
shipped model, a ZMQ publisher nobody listens to) fed from memory, in blocks of 1 ms and of 10 ms,
each either as fast as possible or paced at real time (sleeping until each block is due, as a live
source waits for its sender). CPU of the hot-path thread and of the whole process per second of
data; cases interleaved (fast 1, fast 10, paced 1, paced 10, and again) so the machine's drift
falls on all.

    python benchmarks/bench_block_cost.py [--duration 20] [--repeats 2]

The difference between block lengths is the fixed cost of a block (the stages' calls, publishing,
bookkeeping); the difference between fast and paced is the cost of waking up for each block
(caches and branch predictors cold after a sleep). Saves benchmarks/results/block_cost.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rtclass.bench.benchmark import machine, save_json
from rtclass.config import Config, SimulateConfig
from rtclass.ingest.base import SourceStats, StreamInfo
from rtclass.ingest.chunk import Chunk
from rtclass.pipeline.live import Pipeline, make_publishers
from rtclass.sim.recording import Simulation

RESULTS = Path(__file__).parent / "results" / "block_cost.json"
BLOCK_MS = (1.0, 10.0)
#: a publish address on loopback that no one subscribes to
PUBLISH_ADDRESS = "tcp://127.0.0.1:6390"


class MemorySource:
    """Blocks of a recording held in memory, handed out at once or when each is due in real time."""

    def __init__(self, data: np.ndarray, sample_rate_hz: float, block_samples: int, paced: bool):
        self.data, self.fs, self.block, self.paced = data, sample_rate_hz, block_samples, paced
        self.stats = SourceStats()
        self._next = 0
        self._t0 = 0.0

    def open(self) -> StreamInfo:
        return StreamInfo("memory", self.data.shape[1], self.fs)

    @property
    def finished(self) -> bool:
        return self._next >= self.data.shape[0]

    def read(self, timeout_s: float) -> Chunk:
        a = self._next
        b = min(a + self.block, self.data.shape[0])
        if a == 0:
            self._t0 = time.monotonic()
        if self.paced:
            wait_s = self._t0 + b / self.fs - time.monotonic()
            if wait_s > 0:
                time.sleep(wait_s)
        self._next = b
        self.stats.samples_in += b - a
        return Chunk(self.data[a:b].copy(), a, time.monotonic())

    def close(self) -> None:
        pass


def run_case(sim: Simulation, data: np.ndarray, block_ms: float, paced: bool) -> dict:
    cfg = Config().replace(publish={"lsl": False})
    block = int(round(block_ms * sim.fs / 1000))
    pipe = Pipeline(cfg, MemorySource(data, sim.fs, block, paced), probe=sim.probe)
    pipe.announce = lambda message: None
    pipe.open()
    pipe.publishers = make_publishers(cfg, "block-cost", PUBLISH_ADDRESS)
    try:
        thread0, process0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
        pipe.run()
        thread_s, process_s = time.thread_time() - thread0, time.process_time() - process0
        wall_s = time.perf_counter() - wall0
    finally:
        pipe.close()
    data_s = data.shape[0] / sim.fs
    m = pipe.metrics()
    return {
        "block_ms": block_ms,
        "paced": paced,
        "hot_path_thread_cores": thread_s / data_s,
        "process_cores": process_s / data_s,
        "wall_s": wall_s,
        "units": m["units"],
        "spikes": m["spikes"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    sim = Simulation(SimulateConfig(duration_s=args.duration, seed=args.seed))
    data = sim.synthesizer().read(sim.n_samples)
    runs = []
    for _ in range(args.repeats):
        for paced in (False, True):
            for block_ms in BLOCK_MS:
                runs.append(run_case(sim, data, block_ms, paced))
                r = runs[-1]
                print(
                    f"{block_ms:g} ms blocks, {'paced' if paced else 'fast'}: hot-path thread "
                    f"{r['hot_path_thread_cores']:.3f} core, process {r['process_cores']:.3f} core, {r['units']} units",
                    flush=True,
                )
    summary = {}
    for paced in (False, True):
        for block_ms in BLOCK_MS:
            these = [r for r in runs if r["paced"] == paced and r["block_ms"] == block_ms]
            summary[f"{block_ms:g} ms, {'paced' if paced else 'fast'}"] = {
                "hot_path_thread_cores_median": float(np.median([r["hot_path_thread_cores"] for r in these])),
                "process_cores_median": float(np.median([r["process_cores"] for r in these])),
            }
    res = {"machine": machine(), "duration_s": args.duration, "seed": args.seed, "runs": runs, "summary": summary}
    save_json(res, args.out)
    for k, v in summary.items():
        print(f"{k}: hot path {v['hot_path_thread_cores_median']:.3f} core, process {v['process_cores_median']:.3f}")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
