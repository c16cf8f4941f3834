"""Where the live run is scheduled (``rtclass.pipeline.scheduling``): pinned to the cores a rig
keeps for it, the hot path at real-time priority where the system permits it (a warning and
normal scheduling where not), threads started later at normal priority, everything undone after."""

import os
import threading

import pytest

from rtclass.config import RunConfig
from rtclass.pipeline.scheduling import apply_scheduling, restore_scheduling


def _policy() -> int:
    return os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)


def test_the_run_is_pinned_to_its_cores_and_unpinned_after():
    before = os.sched_getaffinity(0)
    core = max(before)
    got = apply_scheduling(RunConfig(cpu_cores=str(core)))
    try:
        assert got.cpu_cores == [core] and not got.refused
        assert os.sched_getaffinity(0) == {core}
    finally:
        restore_scheduling(got, before)
    assert os.sched_getaffinity(0) == before


def test_cores_that_do_not_exist_are_a_warning_not_a_failure(caplog):
    before = os.sched_getaffinity(0)
    got = apply_scheduling(RunConfig(cpu_cores="4000-4001"))
    assert got.cpu_cores == [] and "none of these cores" in got.refused
    assert os.sched_getaffinity(0) == before
    assert "normal scheduling" in caplog.text


@pytest.mark.skipif(not hasattr(os, "SCHED_FIFO"), reason="no real-time scheduling on this system")
def test_real_time_priority_for_the_hot_path_only_where_permitted():
    before = os.sched_getaffinity(0)
    got = apply_scheduling(RunConfig(realtime_priority=1))
    seen = {}
    try:
        if got.realtime_priority:  # permitted (root, CAP_SYS_NICE, an rtprio limit)
            assert _policy() == os.SCHED_FIFO and not got.refused
            worker = threading.Thread(target=lambda: seen.update(policy=_policy()))
            worker.start()
            worker.join()
            assert seen["policy"] == os.SCHED_OTHER  # a thread started later: normal priority
        else:  # refused: said so, and the run goes on normally
            assert "realtime_priority 1" in got.refused and _policy() == os.SCHED_OTHER
    finally:
        restore_scheduling(got, before)
    assert _policy() == os.SCHED_OTHER
