"""Discovery's clustering (PCA + ISO-SPLIT) in a child process.

ISO-SPLIT holds the GIL for its whole run (tens to hundreds of ms); in a thread of the live
process it stalled the hot path. The child is started with ``python -m`` (not
``multiprocessing``, whose spawn re-imports the user's main script) at a lower priority than the
hot path (a niceness, not Linux's SCHED_IDLE: an idle-class process gets no CPU at all while the
cores are busy, and discovery then found no units on a loaded rig), and talks over its
stdin/stdout pipes: one JSON header line per message, then the arrays as raw bytes, each
announced by a JSON line with dtype and shape (no pickle).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import BinaryIO

import numpy as np

#: one BLAS/OpenMP thread in the child: its matrices are small, and at idle priority a pool's
#: threads spin-wait for a partner that the scheduler has preempted (seen: a round took seconds)
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class ClusteringFailed(RuntimeError):
    """The clustering process died or answered something unreadable."""


def write_array(out: BinaryIO, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    out.write(json.dumps({"dtype": a.dtype.str, "shape": list(a.shape)}).encode() + b"\n")
    out.write(a.tobytes())


def read_array(src: BinaryIO, peer: str = "the clustering process") -> np.ndarray:
    head = json.loads(_read_line(src, peer))
    dtype = np.dtype(head["dtype"])
    shape = tuple(int(n) for n in head["shape"])
    size = int(np.prod(shape)) * dtype.itemsize
    data = src.read(size)
    if len(data) != size:
        raise ClusteringFailed(f"array cut short: {len(data)} of {size} bytes")
    return np.frombuffer(data, dtype).reshape(shape).copy()


def _read_line(src: BinaryIO, peer: str = "the clustering process") -> bytes:
    line = src.readline()
    if not line:
        raise ClusteringFailed(f"{peer} closed the pipe")
    return line


class ClusteringProcess:
    """A child process that runs ``cluster_snippets`` on the zones it is sent, one request at a
    time (the caller is discovery's background thread; the hot path never calls it)."""

    def __init__(self, niceness: int) -> None:
        self.niceness = niceness
        self._proc: subprocess.Popen | None = None
        #: CPU seconds used by the clustering processes so far (the current one as last reported)
        self._cpu_s_ended = 0.0
        self._cpu_s_current = 0.0

    @property
    def cpu_s(self) -> float:
        return self._cpu_s_ended + self._cpu_s_current

    def _start(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._cpu_s_ended += self._cpu_s_current
            self._cpu_s_current = 0.0
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "rtclass.discovery.worker", str(self.niceness)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,
                env={**os.environ, **SINGLE_THREADED},
            )
        return self._proc

    def run(self, zones: list[np.ndarray], pca_components: int, min_spikes: int, pre: int) -> list[list]:
        """For each zone's snippets ``[n, W, K]``: its clusters as (median template, member mask)."""
        proc = self._start()
        try:
            request = {"zones": len(zones), "pca_components": pca_components, "min_spikes": min_spikes, "pre": pre}
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            for snips in zones:
                write_array(proc.stdin, snips.astype(np.float32, copy=False))
            proc.stdin.flush()
            found = []
            for _ in zones:
                head = json.loads(_read_line(proc.stdout))
                n = int(head["clusters"])
                self._cpu_s_current = float(head["cpu_s"])
                found.append([(read_array(proc.stdout), read_array(proc.stdout)) for _ in range(n)])
            return found
        except (OSError, ValueError, KeyError, ClusteringFailed) as exc:
            self.close()
            raise ClusteringFailed(f"clustering process failed: {exc}") from exc

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()  # end of input: the child exits
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            proc.stdout.close()


def serve(src: BinaryIO, out: BinaryIO) -> None:
    """The child's loop: answer requests until its input closes."""
    from rtclass.discovery.clustering import cluster_snippets

    while True:
        line = src.readline()
        if not line:
            return
        request = json.loads(line)
        zones = [read_array(src, "the parent") for _ in range(int(request["zones"]))]
        for snips in zones:
            clusters = cluster_snippets(
                snips, int(request["pca_components"]), int(request["min_spikes"]), int(request["pre"])
            )
            out.write(json.dumps({"clusters": len(clusters), "cpu_s": time.process_time()}).encode() + b"\n")
            for template, members in clusters:
                write_array(out, template)
                write_array(out, members)
        out.flush()


def stay_out_of_the_way(niceness: int) -> None:
    """Yield to the hot path without starving: ``niceness`` added (at 5, a busy core gives this
    process about a third of a normal process's share: it still progresses when every core is
    busy), and if the parent was pinned to some cores (``taskset``, a rig's isolated core), run
    on the others."""
    try:
        os.nice(niceness)
    except (AttributeError, OSError):
        pass
    try:
        others = set(range(os.cpu_count() or 1)) - os.sched_getaffinity(0)
        if others:
            os.sched_setaffinity(0, others)
    except (AttributeError, OSError):
        pass


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes our input
    stay_out_of_the_way(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except (BrokenPipeError, ClusteringFailed):  # the parent went away mid-request: nothing left to do
        os._exit(0)
