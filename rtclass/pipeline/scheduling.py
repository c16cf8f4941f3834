"""Where and how the live run is scheduled: the cores it may use (``[run] cpu_cores``) and
real-time scheduling of its hot path (``[run] realtime_priority``), each with a safe fallback: what
the system refuses is a warning, and the run goes on with normal scheduling."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from rtclass.config import RunConfig, parse_cpu_cores

log = logging.getLogger("rtclass.pipeline")


@dataclass
class Scheduling:
    """What the run got (for metrics.json): the cores it runs on (empty: any), the real-time
    priority of its hot path (0: normal scheduling) and what the system refused, if anything."""

    cpu_cores: list[int]
    realtime_priority: int
    refused: str = ""

    def as_dict(self) -> dict:
        return {"cpu_cores": self.cpu_cores, "realtime_priority": self.realtime_priority, "refused": self.refused}


def _pin_all_threads(cores: set[int]) -> None:
    """Every thread of this process on ``cores`` (threads started later inherit it)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except ProcessLookupError:  # a thread that just ended
            continue


def apply_scheduling(cfg: RunConfig) -> Scheduling:
    """Pin the process to ``cpu_cores`` and give the calling thread (the hot path) SCHED_FIFO at
    ``realtime_priority``, where permitted. Threads and processes it starts later do not inherit
    the real-time policy (``SCHED_RESET_ON_FORK``): the labeller and discovery's clustering stay at
    normal priority, so a busy one cannot lock the machine."""
    got = Scheduling(cpu_cores=[], realtime_priority=0)
    refused = []
    cores = parse_cpu_cores(cfg.cpu_cores)
    if cores:
        usable = cores & os.sched_getaffinity(0)
        if not usable:
            refused.append(f"cpu_cores {cfg.cpu_cores!r}: none of these cores is available here")
        else:
            try:
                _pin_all_threads(usable)
                got.cpu_cores = sorted(usable)
            except OSError as exc:
                refused.append(f"cpu_cores {cfg.cpu_cores!r}: {exc.strerror}")
    if cfg.realtime_priority > 0:
        fifo = getattr(os, "SCHED_FIFO", None)
        if fifo is None:
            refused.append("realtime_priority: this system has no real-time scheduling")
        else:
            try:
                policy = fifo | getattr(os, "SCHED_RESET_ON_FORK", 0)
                os.sched_setscheduler(0, policy, os.sched_param(cfg.realtime_priority))
                got.realtime_priority = cfg.realtime_priority
            except OSError as exc:
                refused.append(
                    f"realtime_priority {cfg.realtime_priority}: {exc.strerror} (needs root, CAP_SYS_NICE or an "
                    "rtprio limit in /etc/security/limits.conf)"
                )
    if refused:
        got.refused = "; ".join(refused)
        log.warning("scheduling: %s; the run goes on with normal scheduling for these", got.refused)
    return got


def restore_scheduling(got: Scheduling, cores_before: set[int]) -> None:
    """Undo ``apply_scheduling`` (a run inside a process that goes on: tests, notebooks)."""
    if got.realtime_priority:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    if got.cpu_cores:
        _pin_all_threads(cores_before)
