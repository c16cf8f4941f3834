"""The live view of a run (``rtclass.apps.liveview``): on a terminal a table refreshed in place, else
one log line per update; both say what the operator needs (data time, spikes, chunk times,
real-time factor, dropped samples, and when the source has gone quiet)."""

import io

from rich.console import Console

from rtclass.apps.liveview import LiveView
from rtclass.pipeline.live import Status


def _status(**changes):
    s = Status(
        data_s=12.5,
        wall_s=12.6,
        spikes=4321,
        spikes_per_s=345.0,
        active_channels=97,
        chunk_p50_us=210.0,
        chunk_p99_us=880.0,
        realtime_factor=4.2,
        samples_dropped=0,
        detecting=True,
        source_name="NP1",
        extra={"units": 23},
    )
    for k, v in changes.items():
        setattr(s, k, v)
    return s


def test_without_a_terminal_one_line_per_update(capsys):
    console = Console(file=io.StringIO(), force_terminal=False)
    with LiveView("rtclass", console) as view:
        view.update(_status())
        view.update(_status(samples_dropped=30, waiting_s=3.0))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "12.5 s" in lines[0] and "spikes 4321" in lines[0] and "345/s" in lines[0] and "97 ch" in lines[0]
    assert "p50 210 us" in lines[0] and "p99 880 us" in lines[0] and "4.2x RT" in lines[0]
    assert "0 samples dropped" in lines[0] and "WAITING" not in lines[0]
    assert "30 samples dropped" in lines[1] and "WAITING for data from NP1 for 3 s" in lines[1]


def test_the_one_line_names_every_counter_that_moved(capsys):
    console = Console(file=io.StringIO(), force_terminal=False)
    with LiveView("rtclass", console) as view:
        view.update(
            _status(
                malformed=3, malformed_by_kind={"magic": 2, "late": 1}, restarts=1, classifier="net", labeller_late=4
            )
        )
    line = capsys.readouterr().out
    assert "3 malformed (1 late, 2 magic)" in line and "1 restarts" in line and "4 late (cores busy)" in line


def _render(status, width=120):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=width, color_system=None)
    with LiveView("rtclass run", console) as view:
        view.update(status)
    return out.getvalue()


def test_on_a_terminal_a_table_with_the_state_of_the_run(capsys):
    text = _render(_status())
    assert capsys.readouterr().out == ""  # nothing printed besides the table
    for words in ("rtclass run", "12.5 s of data", "detecting", "4321", "97 active channels", "4.2x real time"):
        assert words in text, words
    assert "units" in text and "23" in text
    assert "estimating noise" in _render(_status(detecting=False))
    waiting = _render(_status(waiting_s=7.0))
    assert "waiting for data from NP1 for 7 s" in waiting and "detecting" not in waiting
    assert "5 samples dropped in 1 gaps, 2 malformed" in _render(_status(samples_dropped=5, gaps=1, malformed=2))


def test_a_counter_that_moved_is_red_when_data_was_lost_and_yellow_when_not():
    def coloured(status):
        out = io.StringIO()
        with LiveView("rtclass run", Console(file=out, force_terminal=True, width=200, color_system="standard")) as v:
            v.update(status)
        return out.getvalue()

    red, yellow = "\x1b[31m", "\x1b[33m"
    quiet = coloured(_status())
    assert red not in quiet and "0 samples dropped" in quiet
    assert red + "5 samples dropped in 1 gaps" in coloured(_status(samples_dropped=5, gaps=1))
    assert yellow + "2 malformed (2 header)" in coloured(_status(malformed=2, malformed_by_kind={"header": 2}))
    assert yellow + "1 restarts" in coloured(_status(restarts=1))


def test_the_table_shows_the_publish_lag_and_the_labellers_late_and_failed_rounds():
    text = _render(_status(publish_lag_p50_ms=1.25, publish_lag_p99_ms=4.5))
    assert "p50 1.25 ms, p99 4.50 ms" in text and "labeller" not in text  # no classifier: no row
    labelled = _render(
        _status(classifier="the network", labelled_units=7, labeller_rounds=12, labeller_late=2, labeller_failed=1)
    )
    assert "7 units labelled, 12 rounds" in labelled and "2 late (cores busy)" in labelled and "1 failed" in labelled


def test_the_labeller_row_says_what_c4s_spike_filter_left_out_and_withheld():
    quiet = _render(_status(classifier="the network", labelled_units=7, labeller_rounds=12))
    assert "C4's filter" not in quiet and "good spikes" not in quiet  # nothing filtered: nothing said
    text = _render(
        _status(
            classifier="the network",
            labelled_units=7,
            labeller_rounds=12,
            spike_filter_filtered_units=3,
            spike_filter_spikes_left_out=812,
            spike_filter_withheld_units=2,
        ),
        width=250,
    )
    assert "812 spikes of 3 units left out by C4's filter" in text and "2 with too few good spikes" in text
