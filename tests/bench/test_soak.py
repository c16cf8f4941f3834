"""The soak's fault schedule in two minutes (the benchmark runs it for an hour): an independent
sender stalls and catches up, restarts, sends bursts of malformed frames, and a subscriber joins
that never reads. What a user cares about is asserted, never a timing: every sample sent was
processed and none was counted lost, every malformed frame and the restart were counted, the
spike timeline still matches the ground truth after every fault, units were found."""

import pytest

from rtclass.bench.soak import SCHEDULE, run_soak

#: seconds of data: the schedule's faults 12 s or more apart
DURATION_S = 120.0


@pytest.mark.timeout(600)
def test_two_minutes_of_the_fault_schedule_lose_nothing_and_keep_the_timeline():
    res = run_soak(DURATION_S, window_s=20.0)
    failed = [name for name, ok in res["checks"].items() if not ok]
    assert not failed, (failed, res["run"], res["sent"], res["timeline"])
    run, sent = res["run"], res["sent"]
    assert run["samples_in"] == sent["samples"] == int(DURATION_S * 30000)
    assert run["malformed"] == sent["garbage_frames"] == sum(f.size for f in SCHEDULE if f.kind == "malformed")
    assert len(run["segment_starts"]) == 1 and len(res["timeline"]) == len(SCHEDULE) + 1
    assert all(w["recall"] > 0.5 for w in res["timeline"])  # large units' spikes where the timeline says
