"""Geometry of a walked lane: the turn samples at its ends, its step between
samples, and the runs of one lane number (what the lane pipeline cuts by)."""

from __future__ import annotations

import math

import numpy as np

from acquisition.dsp.levelling import fast_median


def side_steps(x: np.ndarray, y: np.ndarray) -> int:
    """How many steps at the start of (x, y) are mostly sideways (|dx| > |dy|)."""
    n = x.size - 1
    if n < 1 or abs(x[1] - x[0]) <= abs(y[1] - y[0]):
        return 0  # the usual case, without array calls
    k, c = 0, 16
    while k < n:  # look at a few steps first: most lanes start along the line
        hi = min(n, k + c)
        dx, dy = x[k + 1:hi + 1] - x[k:hi], y[k + 1:hi + 1] - y[k:hi]
        along = np.flatnonzero(np.abs(dx) <= np.abs(dy))
        if along.size:
            return k + int(along[0])
        k, c = hi, 4 * c
    return n


def end_turns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leading/trailing samples reached by a mostly sideways step (the turn).

    The sample before a sideways step is still in the turn, so ``k`` sideways
    steps at an end mark ``k + 1`` samples.
    """
    out = np.zeros(x.size, dtype=bool)
    lead = side_steps(x, y)
    if lead:
        out[:lead + 1] = True
    trail = side_steps(x[::-1], y[::-1])
    if trail:
        out[x.size - 1 - trail:] = True
    return out


def walk_step(x: np.ndarray, y: np.ndarray, scales: tuple[float, ...]) -> float:
    """Median distance between consecutive samples (m), as the lane code uses it.

    Equal to ``median(hypot(dx, dy))`` wherever that matters: the step only
    enters as ``step > 1e-3`` and ``round(c / step)`` for each ``c`` in
    ``scales``. ``sqrt(dx² + dy²)`` (vectorised, unlike hypot) is within a few
    ulp of it, so it decides the same unless a decision is within 1e-9 of its
    boundary; then the exact value is computed.
    """
    dx = x[1:] - x[:-1]
    dy = y[1:] - y[:-1]
    s2 = np.multiply(dx, dx, out=dx)
    s2 += np.multiply(dy, dy, out=dy)
    k = s2.size // 2
    s2.partition(k)
    hi = math.sqrt(float(s2[k]))
    step = hi if s2.size % 2 else 0.5 * (math.sqrt(float(s2[:k].max())) + hi)
    if step <= 1e-3:  # a standing sensor: the caller replaces any step this small
        return step
    close = not 1e-150 < step < 1e150 or abs(step - 1e-3) < 1e-9
    for c in scales:
        q = c / step
        close = close or abs(abs(q - math.floor(q)) - 0.5) < 1e-9 * max(1.0, q)
    if close:
        return fast_median(np.hypot(np.diff(x), np.diff(y)), overwrite=True)
    return step


def lane_runs(lane_ids: np.ndarray) -> list[tuple[int, int, int]]:
    """Given lane numbers as runs ``(start, stop, lane)``."""
    cuts = (np.flatnonzero(np.diff(lane_ids)) + 1).tolist()
    starts, ends = [0, *cuts], [*cuts, len(lane_ids)]
    return [(a, b, int(lane_ids[a])) for a, b in zip(starts, ends, strict=True)]
