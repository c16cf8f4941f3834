"""Input guard: non-finite samples (NaN/Inf from a float stream) are zeroed and counted."""

from __future__ import annotations

import numba
import numpy as np

from rtclass.stage import Stage


@numba.jit(nopython=True, nogil=True, cache=True)
def zero_nonfinite(x):
    """Set NaN/Inf values of the float32 [n, C] array to 0 in place; returns how many."""
    flat = x.reshape(-1)
    # fast check first: v * 0 == 0 holds exactly for finite v (a vectorisable reduction)
    finite = True
    for i in range(flat.shape[0]):
        finite &= flat[i] * np.float32(0.0) == np.float32(0.0)
    if finite:
        return 0
    bad = 0
    for i in range(flat.shape[0]):
        v = flat[i]
        if not np.isfinite(v):
            flat[i] = 0.0
            bad += 1
    return bad


class NonFiniteGuard(Stage):
    """Stateless stage; counts what it repaired in ``repaired``."""

    def __init__(self) -> None:
        self.repaired = 0

    def process(self, data: np.ndarray) -> int:
        bad = zero_nonfinite(data)
        self.repaired += bad
        return bad
