"""Score reported targets against the simulator's ground truth.

Matching is one-to-one (Hungarian assignment on horizontal distance, or 3-D
distance when asked) within a gate, so one fitted target cannot claim two
truths and a duplicate report counts as a false pick. Accuracy claims in the
README and bench/ come from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True, slots=True)
class Pair:
    truth_index: int
    report_index: int
    horizontal_error_m: float
    depth_error_m: float
    error_3d_m: float


@dataclass(slots=True)
class MatchResult:
    pairs: list[Pair] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    false_picks: list[int] = field(default_factory=list)

    @property
    def horizontal_errors(self) -> np.ndarray:
        return np.array([p.horizontal_error_m for p in self.pairs])

    @property
    def depth_errors(self) -> np.ndarray:
        return np.array([p.depth_error_m for p in self.pairs])

    def recall(self, eligible: Sequence[int] | None = None) -> float:
        """Share of (eligible) truths matched; 1.0 when there are none."""
        matched = {p.truth_index for p in self.pairs}
        pool = list(eligible) if eligible is not None else (
            [p.truth_index for p in self.pairs] + self.missed)
        if not pool:
            return 1.0
        return sum(1 for i in pool if i in matched) / len(pool)


def match(
    truth_xyd: np.ndarray,
    report_xyd: np.ndarray,
    *,
    gate_m: float = 1.0,
    use_depth: bool = False,
) -> MatchResult:
    """Match rows of (x, y, depth) truth to (x, y, depth) reports within ``gate_m``.

    The gate applies to horizontal distance, or to 3-D distance if ``use_depth``.
    """
    t = np.asarray(truth_xyd, dtype=float).reshape(-1, 3)
    r = np.asarray(report_xyd, dtype=float).reshape(-1, 3)
    res = MatchResult()
    if len(t) == 0 or len(r) == 0:
        res.missed = list(range(len(t)))
        res.false_picks = list(range(len(r)))
        return res
    dh = np.hypot(t[:, None, 0] - r[None, :, 0], t[:, None, 1] - r[None, :, 1])
    d3 = np.sqrt(dh**2 + (t[:, None, 2] - r[None, :, 2]) ** 2)
    cost = d3 if use_depth else dh
    big = 1e6
    rows, cols = linear_sum_assignment(np.where(cost <= gate_m, cost, big))
    used_t, used_r = set(), set()
    for i, j in zip(rows, cols, strict=True):
        if cost[i, j] <= gate_m:
            res.pairs.append(Pair(int(i), int(j), float(dh[i, j]),
                                  float(r[j, 2] - t[i, 2]), float(d3[i, j])))
            used_t.add(int(i))
            used_r.add(int(j))
    res.missed = [i for i in range(len(t)) if i not in used_t]
    res.false_picks = [j for j in range(len(r)) if j not in used_r]
    res.pairs.sort(key=lambda p: p.truth_index)
    return res
