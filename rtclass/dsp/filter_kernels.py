"""Numba kernels for causal filtering and common referencing of ``[n_samples, n_channels]`` blocks.

Kernels take arrays only; state arrays are passed in and updated in place, so that running a
stream chunk by chunk performs exactly the operations of one pass over the whole stream.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=True)
def sosfilt_block(x, out, sos, z0, z1, row):
    """Second-order sections, transposed direct form II, one time step at a time.

    x, out: float32 [n, C]; sos: float32 [S, 6] (b0 b1 b2 a0 a1 a2, a0 == 1);
    z0, z1: float32 [S, C] filter state (updated); row: float32 [C] scratch.
    The inner loop runs over channels so it vectorises over contiguous memory. float32 state
    is accurate to ~1e-5 of the signal for band edges >= 100 Hz at 30 kHz (checked in tests
    against scipy's float64 sosfilt); fastmath only lets LLVM vectorise and fuse multiply-adds,
    the order of operations per sample is fixed, so chunking never changes the result.
    """
    n, n_ch = x.shape
    n_sec = sos.shape[0]
    for t in range(n):
        for c in range(n_ch):
            row[c] = x[t, c]
        for s in range(n_sec):
            b0 = sos[s, 0]
            b1 = sos[s, 1]
            b2 = sos[s, 2]
            a1 = sos[s, 4]
            a2 = sos[s, 5]
            for c in range(n_ch):
                v = row[c]
                y = b0 * v + z0[s, c]
                z0[s, c] = b1 * v - a1 * y + z1[s, c]
                z1[s, c] = b2 * v - a2 * y
                row[c] = y
        for c in range(n_ch):
            out[t, c] = row[c]


@numba.jit(nopython=True, nogil=True, cache=True)
def kth_smallest(a, k):
    """Partially order ``a`` in place (Wirth's selection) so that ``a[k]`` is its k-th smallest
    value, everything before it is <= and everything after it is >=; returns ``a[k]``."""
    lo = 0
    hi = a.shape[0] - 1
    while lo < hi:
        pivot = a[k]
        i = lo
        j = hi
        while True:
            while a[i] < pivot:
                i += 1
            while pivot < a[j]:
                j -= 1
            if i <= j:
                tmp = a[i]
                a[i] = a[j]
                a[j] = tmp
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo = i
        if k < i:
            hi = j
    return a[k]


@numba.jit(nopython=True, nogil=True, cache=True)
def median_inplace(a):
    """Median of ``a`` (mean of the two middle values when the length is even), reordering ``a``."""
    n = a.shape[0]
    k = n // 2
    upper = kth_smallest(a, k)
    if n % 2 == 1:
        return upper
    lower = a[0]
    for i in range(1, k):
        if a[i] > lower:
            lower = a[i]
    return (lower + upper) * 0.5


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=True, inline="always")
def _row_mean(row):
    """Mean of a row; fastmath lets the sum use several accumulators (the order of additions is
    fixed by the compiled code, so results do not depend on chunking)."""
    total = np.float32(0.0)
    for c in range(row.shape[0]):
        total += row[c]
    return total / row.shape[0]


#: indices into the median-reference state vector
MEDIAN_PREV, MEAN_PREV, DENSITY = 0, 1, 2


#: fast-math flags without 'nnan'/'ninf' (the guard has replaced non-finite samples before the
#: reference runs): lets the row sums and counts vectorise; every result stays exact.
REASSOCIATE = {"reassoc", "nsz", "arcp", "contract", "afn"}

#: after a full selection, the density of values near the median is re-estimated from the
#: values within this many (expected) values of it
DENSITY_WINDOW_VALUES = 8.0
#: weight of the newest estimate in the running density of values near the median
DENSITY_UPDATE = 0.2
#: bounds of that density (values per uV): flat or tied rows would drive it to 0 or infinity
DENSITY_MIN, DENSITY_MAX = 1e-3, 1e6


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE, inline="always")
def _count_below(row, g):
    """How many values of ``row`` are < g: branch-free, vectorised (float32 counts are exact
    below 2**24; 8 lanes per vector op)."""
    below = np.float32(0.0)
    for c in range(row.shape[0]):
        below += np.float32(row[c] < g)
    return int(below)


@numba.jit(nopython=True, nogil=True, cache=True, inline="always")
def _smallest_at_or_above(row, g):
    """The smallest value >= g (one branch per value, taken only when a new minimum is found,
    so it is well predicted)."""
    m = np.float32(np.inf)
    for c in range(row.shape[0]):
        v = row[c]
        if (v >= g) & (v < m):
            m = v
    return m


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE, inline="always")
def _split_point(row, k, g, density, max_passes):
    """A value g with exactly k values of ``row`` below it (any point between the k-th and
    (k+1)-th smallest values), or NaN if ``max_passes`` counting passes did not find one (ties
    at the split, or a bad start). Starts at ``g``: a Newton step on the empirical distribution
    (``density`` values per uV), then regula falsi between the nearest guesses either side,
    bisecting when one side is kept twice in a row. Also returns the count at the start."""
    lo_g, lo_c = -np.inf, 0
    hi_g, hi_c = np.inf, row.shape[0]
    kept = 0  # -1 / +1: the side the last pass moved
    first_count = -1
    for p in range(max_passes):
        c = _count_below(row, g)
        if p == 0:
            first_count = c
        if c == k:
            return g, first_count
        if c < k:
            lo_g, lo_c = g, c
            again = kept == -1
            kept = -1
        else:
            hi_g, hi_c = g, c
            again = kept == 1
            kept = 1
        if lo_g > -np.inf and hi_g < np.inf:
            nxt = 0.5 * (lo_g + hi_g) if again else lo_g + (k - lo_c) * (hi_g - lo_g) / (hi_c - lo_c)
        else:
            nxt = g + (k - c) / density
        nxt = np.float32(nxt)
        if not (nxt > lo_g and nxt < hi_g):
            nxt = np.float32(0.5 * (lo_g + hi_g))
            if not (nxt > lo_g and nxt < hi_g):  # adjacent floats: the split falls on a tie
                break
        g = nxt
    return np.float32(np.nan), first_count


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE)
def subtract_median_reference(x, state, scratch, max_passes):
    """Subtract from every sample of ``x`` (float32 [n, C], in place) a median across channels
    at that time point.

    With C odd this is the middle value, exactly. With C even any value between the two middle
    values is a median (it minimises the summed absolute deviation); numpy reports their
    midpoint, this kernel the first point it finds with exactly C/2 values below it: at most half
    the gap between the two middle values from numpy's (the gap averages ~0.05 uV on the
    simulated probe; NP1.0's ADC step is 2.34 uV). The point is found by counting passes only
    (branch-free, vectorised: ~75 ns each at C = 384, ~4 a row), starting from the previous row's
    median shifted by the change of the row mean (the common mode moves both); a full selection
    (~6 us) runs when ``max_passes`` passes did not find it (ties at the middle, the first rows).
    A selection per row cost ~1 us (gathering the values near the median and ordering them:
    branch mispredictions); the counting search ~0.3 us. Deterministic given the state, so
    chunking never changes a result.

    state: float64 [3] (previous median, previous mean, values per uV near the median), updated.
    scratch: float32 [C] work space.
    """
    n, n_ch = x.shape
    k = n_ch // 2
    odd = n_ch % 2 == 1
    for t in range(n):
        row = x[t]
        mean = _row_mean(row)
        density = state[DENSITY]
        start = np.float32(state[MEDIAN_PREV] + (mean - state[MEAN_PREV]))
        m, first_count = _split_point(row, k, start, density, max_passes)
        if np.isnan(m):
            for c in range(n_ch):
                scratch[c] = row[c]
            m = np.float32(median_inplace(scratch))
            half = DENSITY_WINDOW_VALUES / density
            near = 0
            for c in range(n_ch):
                near += np.int32(abs(row[c] - m) <= half)
            density = (1.0 - DENSITY_UPDATE) * density + DENSITY_UPDATE * max(near, 1) / (2.0 * half)
        else:
            if odd:  # the middle value itself: the smallest of the k + 1 values at or above m
                m = _smallest_at_or_above(row, m)
            if abs(first_count - k) >= 2 and m != start:
                density = (1.0 - DENSITY_UPDATE) * density + DENSITY_UPDATE * abs(first_count - k) / abs(m - start)
        state[MEDIAN_PREV] = m
        state[MEAN_PREV] = mean
        state[DENSITY] = min(max(density, DENSITY_MIN), DENSITY_MAX)
        for c in range(n_ch):
            row[c] -= m
