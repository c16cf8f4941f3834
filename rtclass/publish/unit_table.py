"""The unit table: what subscribers learn about each unit (topic ``units``, JSON)."""

from __future__ import annotations

import json

import numpy as np

from rtclass.matching.templates import TemplateBank
from rtclass.publish.wire import CELL_TYPE_NAMES


class UnitTable:
    """Per-unit running statistics, updated with every assigned spike batch."""

    def __init__(self, bank: TemplateBank, sample_rate_hz: float, labeler=None, late_delay_ms: float = 0.0):
        """``late_delay_ms``: how much later the spikes of a unit that decides late are published
        (the matcher's ``late_delay_ms``; 0: no unit does)."""
        self.bank = bank
        self.late_delay_ms = late_delay_ms
        self.labeler = labeler
        self.fs = sample_rate_hz
        self.count: dict[int, int] = {}
        self.amp_sum: dict[int, float] = {}
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.version = 0  # bumps when a unit appears or changes label
        probe = bank.probe
        #: the contacts, for views that draw the probe (encoded once: the table is sent every few seconds)
        self._probe_json = json.dumps(
            {
                "name": probe.name,
                "contact_width_um": probe.contact_width_um,
                "positions_um": np.round(probe.positions_um, 2).tolist(),
            }
        )

    def update(self, assigned: np.ndarray) -> None:
        """Count a block's decided spikes (a live block holds a few: one pass over them costs less
        than the array operations' set-up)."""
        count, amp_sum, last = self.count, self.amp_sum, self.last
        for u, s, a in zip(assigned["unit"].tolist(), assigned["sample"].tolist(), assigned["fit"].tolist()):
            if u < 0:
                continue
            n = count.get(u)
            if n is None:
                n, amp_sum[u], self.first[u] = 0, 0.0, s
                self.version += 1
            count[u] = n + 1
            amp_sum[u] += a
            last[u] = s

    def rows(self, now_sample: int) -> list[dict]:
        b = self.bank
        pos = b.probe.positions_um
        out = []
        seen = set()
        for i in range(b.n):
            uid = int(b.ids[i])
            if uid in seen:
                continue
            seen.add(uid)
            n = self.count.get(uid, 0)
            span = (now_sample - self.first[uid]) / self.fs if n else 0.0
            ch = int(b.peak_channel[i])
            out.append(
                {
                    "id": uid,
                    "peak_channel": ch,
                    "x_um": float(pos[ch, 0]),
                    "y_um": float(pos[ch, 1]),
                    "mean_amplitude_uv": self.amp_sum.get(uid, 0.0) / n if n else 0.0,
                    "spike_count": n,
                    "firing_rate_hz": n / span if span > 0 else 0.0,
                    "merged_into": b.merged_into.get(uid),
                    # its spikes that another, busier unit could have fired wait for a late decision
                    "late_decision_ms": self.late_delay_ms if b.late[i] else 0.0,
                    **self._label(uid),
                }
            )
        return out

    def _label(self, uid: int) -> dict:
        lab = self.labeler
        if lab is None:
            return {"cell_type": "unlabeled", "cell_type_code": 0, "confidence": 0.0}
        code, conf = lab.label_of(np.array([uid]))
        return {
            "cell_type": CELL_TYPE_NAMES[int(code[0])],
            "cell_type_code": int(code[0]),
            "confidence": float(conf[0]),
            "probabilities": dict(zip(lab.model.classes, lab.probabilities.get(uid, []))),
        }

    def to_json(self, now_sample: int) -> bytes:
        """``{"units": [...], "sample": N, "sample_rate_hz": F, "probe": {"name", "contact_width_um",
        "positions_um"}}``."""
        rows = json.dumps({"units": self.rows(now_sample), "sample": now_sample, "sample_rate_hz": self.fs})
        return (rows[:-1] + ', "probe": ' + self._probe_json + "}").encode()
