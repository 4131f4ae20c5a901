"""Pair rules of the lane fit: physics constraints on two sources close together.

They are not a model-order criterion (`acquisition.dsp.acceptance` says how
many sources the data need): they say which pairs a model may hold at all.
A single dipole fitted to an elongated body leaves a misfit that looks like
a second source half a body-length away at about the same depth; scrap
beside a bomb is far weaker than the bomb and resolvable only where its
anomaly is sharper, i.e. shallower.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["implausible_weaker", "last_pairs_plausible", "pairs_plausible"]


def pairs_plausible(p: np.ndarray, lin: np.ndarray, min_sep: float, close_m: float,
                    ratio: float) -> bool:
    """Sources far enough apart; close pairs only if one is weaker and shallower.

    ``p``: point sources packed flat as (x, y, depth) triples, ``lin`` their
    moments (3 each). Every pair must be ``min_sep`` apart; within
    ``max(close_m, 0.8 m + depth of the stronger)`` a pair is kept only when
    the weaker has at most ``ratio`` of the stronger's moment and lies at
    less than half the stronger's depth (and at least 0.2 m shallower).
    """
    k = len(p) // 3
    mags = [float(np.linalg.norm(lin[3 * i:3 * i + 3])) for i in range(k)]
    for a in range(k):
        for b in range(a + 1, k):
            sep = math.hypot(p[3 * a] - p[3 * b], p[3 * a + 1] - p[3 * b + 1])
            if sep < min_sep:
                return False
            strong, weak = (a, b) if mags[a] >= mags[b] else (b, a)
            ds, dw = p[3 * strong + 2], p[3 * weak + 2]
            if sep < max(close_m, 0.8 + ds) and (
                    mags[weak] > ratio * mags[strong] or dw > min(ds - 0.2, 0.5 * ds)):
                return False
    return True


def implausible_weaker(p: np.ndarray, lin: np.ndarray, min_sep: float, close_m: float,
                       ratio: float) -> int | None:
    """The weaker source of the first pair `pairs_plausible` refuses, or None."""
    k = len(p) // 3
    for a in range(k):
        for b in range(a + 1, k):
            pair = np.concatenate((p[3 * a:3 * a + 3], p[3 * b:3 * b + 3]))
            lp = np.concatenate((lin[3 * a:3 * a + 3], lin[3 * b:3 * b + 3]))
            if not pairs_plausible(pair, lp, min_sep, close_m, ratio):
                ma = float(np.linalg.norm(lin[3 * a:3 * a + 3]))
                mb = float(np.linalg.norm(lin[3 * b:3 * b + 3]))
                return b if mb <= ma else a
    return None


def last_pairs_plausible(p: np.ndarray, lin: np.ndarray, min_sep: float, close_m: float,
                         ratio: float) -> bool:
    """`pairs_plausible` of the last source with each of the others: the
    rules for one more source among sources already judged (a pair the
    stages before kept is theirs to judge, not the new source's)."""
    k = len(p) // 3
    b = k - 1
    for a in range(b):
        pair = np.concatenate((p[3 * a:3 * a + 3], p[3 * b:3 * b + 3]))
        lp = np.concatenate((lin[3 * a:3 * a + 3], lin[3 * b:3 * b + 3]))
        if not pairs_plausible(pair, lp, min_sep, close_m, ratio):
            return False
    return True
