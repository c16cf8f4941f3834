"""The live terminal view of a run (rich), or one log line per update when not on a terminal."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.live import Live
from rich.table import Table

from rtclass.pipeline.live import Status


def _table(title: str, s: Status) -> Table:
    t = Table(title=title, show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold cyan", justify="right")
    t.add_column()
    if s.waiting_s > 0:
        state = f"[bold yellow]waiting for data from {s.source_name} for {s.waiting_s:.0f} s[/bold yellow]"
    elif s.detecting:
        state = "[green]detecting[/green]"
    else:
        state = "[yellow]estimating noise[/yellow]"
    t.add_row("stream", f"{s.data_s:7.1f} s of data in {s.wall_s:6.1f} s   {state}")
    t.add_row("spikes", f"{s.spikes:8d}   {s.spikes_per_s:8.0f} /s on {s.active_channels} active channels")
    t.add_row(
        "per chunk",
        f"p50 {s.chunk_p50_us:6.0f} us   p99 {s.chunk_p99_us:6.0f} us   ({s.realtime_factor:.1f}x real time)",
    )
    t.add_row("input", _input_text(s, markup=True))
    t.add_row("units", _units_text(s, markup=True))
    t.add_row("publish", f"spike -> publish p50 {s.publish_lag_p50_ms:.2f} ms, p99 {s.publish_lag_p99_ms:.2f} ms")
    if s.classifier:
        t.add_row("labeller", _labeller_text(s))
    for k, v in s.extra.items():
        t.add_row(k, str(v))
    return t


def _coloured(text: str, colour: str, markup: bool) -> str:
    """``text`` in rich markup for ``colour`` (none, or no text: as it is), or plain without markup."""
    return f"[{colour}]{text}[/{colour}]" if text and colour and markup else text


def _input_text(s: Status, markup: bool) -> str:
    """The source's counters: samples lost (red), malformed messages by kind and restarts (yellow:
    nothing good was lost), sender stalls (caught up, nothing lost)."""
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(s.malformed_by_kind.items()))
    parts = [
        (f"{s.samples_dropped} samples dropped in {s.gaps} gaps", "red" if s.samples_dropped or s.gaps else ""),
        (f"{s.malformed} malformed" + (f" ({kinds})" if kinds else ""), "yellow" if s.malformed else ""),
        (f"{s.restarts} restarts", "yellow" if s.restarts else ""),
        (f"{s.stalls} sender stalls (nothing lost)", ""),
    ]
    return ", ".join(_coloured(text, colour, markup) for text, colour in parts)


def _units_text(s: Status, markup: bool) -> str:
    """Units found and how discovery keeps up: skipped rounds (it is falling behind the data) in
    yellow, failed rounds in red."""
    text = f"{s.units} units"
    if not (s.discovery_rounds or s.discovery_skipped or s.discovery_failed):
        return text
    text += f", discovery {s.discovery_rounds} rounds"
    behind = f"{s.discovery_skipped} skipped (falling behind: cores busy)" if s.discovery_skipped else ""
    failed = f"{s.discovery_failed} failed" if s.discovery_failed else ""
    return ", ".join(p for p in (text, _coloured(behind, "yellow", markup), _coloured(failed, "red", markup)) if p)


def _labeller_text(s: Status, markup: bool = True) -> str:
    """Labelling rounds run, and those late (yellow: the cores were busy) or failed (red)."""
    parts = [f"{s.labelled_units} units labelled, {s.labeller_rounds} rounds (last {s.labeller_round_ms:.0f} ms)"]
    if s.labeller_late:
        parts.append(_coloured(f"{s.labeller_late} late (cores busy)", "yellow", markup))
    if s.labeller_failed:
        parts.append(_coloured(f"{s.labeller_failed} failed", "red", markup))
    if s.spike_filter_filtered_units:
        parts.append(
            f"{s.spike_filter_spikes_left_out} spikes of {s.spike_filter_filtered_units} units left out by C4's filter"
        )
    if s.spike_filter_withheld_units:
        parts.append(_coloured(f"{s.spike_filter_withheld_units} with too few good spikes", "yellow", markup))
    return ", ".join(parts)


def _waiting_note(s: Status) -> str:
    return f"  WAITING for data from {s.source_name} for {s.waiting_s:.0f} s" if s.waiting_s else ""


class LiveView:
    def __init__(self, title: str, console: Console | None = None):
        self.title = title
        self.console = console or Console(stderr=False)
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def update(self, status: Status) -> None:
        if self._live is not None:
            self._live.update(_table(self.title, status), refresh=True)
        else:
            print(
                f"[{status.data_s:6.1f} s] spikes {status.spikes} ({status.spikes_per_s:.0f}/s, "
                f"{status.active_channels} ch)  chunk p50 {status.chunk_p50_us:.0f} us p99 "
                f"{status.chunk_p99_us:.0f} us  {status.realtime_factor:.1f}x RT  "
                + _input_text(status, markup=False)
                + "  "
                + _units_text(status, markup=False)
                + (f"  labeller: {_labeller_text(status, markup=False)}" if status.classifier else "")
                + _waiting_note(status),
                file=sys.stdout,
                flush=True,
            )

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
