"""Numba kernels for fast, reproducible background noise.

Random numbers come from splitmix64 (64-bit state carried by the caller). A Gaussian value is
the sum of two entries of a 65,536-entry table of standard-normal quantiles, divided by sqrt(2):
Gaussian in shape up to the table's resolution, tails reaching 5.9 sd. Per time point, the
independent per-channel values are read as a window starting at a random offset into a bank of
2**20 such values drawn once (one random number per time point instead of one per channel: the
window of two time points overlaps with probability ~1e-3, the stream never repeats as a
whole). Values are consumed in time-major order with all state passed in, so a stream
generated in any chunking is identical.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.special import ndtri

TABLE_BITS = 16
_MASK = np.uint64((1 << TABLE_BITS) - 1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S16 = np.uint64(16)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S48 = np.uint64(48)
_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))


def normal_table() -> np.ndarray:
    """Standard-normal quantiles at the centres of 2**16 equal-probability bins (float32)."""
    n = 1 << TABLE_BITS
    return ndtri((np.arange(n) + 0.5) / n).astype(np.float32)


@numba.jit(nopython=True, nogil=True, cache=True)
def splitmix64(state):
    """Advance ``state`` (uint64 [1]) and return the next 64 random bits."""
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@numba.jit(nopython=True, nogil=True, cache=True)
def fill_gaussian(out, state, table):
    """Fill the flat float32 array ``out`` with standard-normal values."""
    n = out.shape[0]
    i = 0
    while i < n:
        r = splitmix64(state)
        out[i] = (table[r & _MASK] + table[(r >> _S16) & _MASK]) * _INV_SQRT2
        if i + 1 < n:
            out[i + 1] = (table[(r >> _S32) & _MASK] + table[(r >> _S48) & _MASK]) * _INV_SQRT2
        i += 2


#: log2 of the number of values in the white-noise bank
BANK_BITS = 20


def white_bank(state: np.ndarray, table: np.ndarray, n_channels: int) -> np.ndarray:
    """2**BANK_BITS standard-normal values (plus a channel row of wrap-around), drawn from
    ``state``."""
    bank = np.empty((1 << BANK_BITS) + n_channels + 4, np.float32)
    fill_gaussian(bank, state, table)
    return bank


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=True)
def fill_background(out, state, table, bank, sd, spatial, cm_gain, cm_sd, lowpass_alpha, lp, lfp_alpha, lfp_sd, lfp):
    """Background noise of a probe, [n, C] float32 in uV, written into ``out``.

    Per time point: independent Gaussian values per channel (plus 2 padding values each side),
    a window of ``bank`` at a random offset, are mixed along the channel axis with ``spatial`` =
    (w0, w1, w2) weights for offsets 0, +-1, +-2 (neighbouring contacts share noise), scaled per
    channel by ``sd``; a common-mode value ``cm_sd * N(0,1)`` times each channel's ``cm_gain`` is
    added; the sum goes through a one-pole low-pass (``lowpass_alpha``, state ``lp``) like the
    headstage's anti-alias filter; a slow common local-field component (one-pole low-pass of white
    noise, state ``lfp[0]``) is added.
    """
    n, n_ch = out.shape
    w0 = spatial[0]
    w1 = spatial[1]
    w2 = spatial[2]
    bank_mask = np.uint64((1 << BANK_BITS) - 1)
    for t in range(n):
        white = bank[np.int64(splitmix64(state) & bank_mask) :]
        r = splitmix64(state)
        cm = (table[r & _MASK] + table[(r >> _S16) & _MASK]) * _INV_SQRT2 * cm_sd
        drive = (table[(r >> _S32) & _MASK] + table[(r >> _S48) & _MASK]) * _INV_SQRT2 * lfp_sd
        lfp[0] += lfp_alpha * (drive - lfp[0])
        slow = np.float32(lfp[0])
        for c in range(n_ch):
            v = w0 * white[c + 2] + w1 * (white[c + 1] + white[c + 3]) + w2 * (white[c] + white[c + 4])
            v = v * sd[c] + cm_gain[c] * cm
            lp[c] += lowpass_alpha * (v - lp[c])
            out[t, c] = lp[c] + slow
