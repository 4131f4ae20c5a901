"""The procedure's QA verdict on a cleared area, and the random boxes it is checked in.

At least 1 % of the cleared area is resurveyed by a QA team in 20 x 20 m
boxes chosen at random. The work is redone from scratch if, to 0.3 m, 0.3 %
or more of the QA team's signals were missed, or if any signal deeper than
0.3 m was missed. Only the QA team's signals inside the boxes count. A QA
signal is found when one of the team's signals lies within the matching
radius, which grows with depth (a deeper signal is located less exactly):
``MATCH_R0_M + MATCH_PER_M * depth``. Each team signal answers for one QA
signal at most (an optimal one-to-one assignment, nearest pairs first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from acquisition.maps.inputs import InputError
from acquisition.maps.targets import MapTarget

SHALLOW_M = 0.3
#: Share of shallow QA signals missed (per cent) at which the work fails.
SHALLOW_FAIL_PERCENT = 0.3
MATCH_R0_M = 0.5
MATCH_PER_M = 0.5
BOX_M = 20.0

Box = tuple[float, float, float, float]


def match_radius(depth: float) -> float:
    return MATCH_R0_M + MATCH_PER_M * max(0.0, depth)


def in_boxes(x: float, y: float, boxes: list[Box]) -> bool:
    return any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)


@dataclass(slots=True)
class QAResult:
    boxes: list[Box]
    qa_signals: list[MapTarget]
    missed: list[MapTarget]
    matched: list[tuple[MapTarget, MapTarget, float]] = field(default_factory=list)

    @property
    def shallow(self) -> list[MapTarget]:
        return [t for t in self.qa_signals if t.depth <= SHALLOW_M]

    @property
    def missed_shallow(self) -> list[MapTarget]:
        return [t for t in self.missed if t.depth <= SHALLOW_M]

    @property
    def missed_deep(self) -> list[MapTarget]:
        return [t for t in self.missed if t.depth > SHALLOW_M]

    @property
    def shallow_missed_percent(self) -> float:
        n = len(self.shallow)
        return 100.0 * len(self.missed_shallow) / n if n else 0.0

    @property
    def passed(self) -> bool:
        return not self.missed_deep and self.shallow_missed_percent < SHALLOW_FAIL_PERCENT

    def reasons(self) -> list[str]:
        out = []
        if self.missed_deep:
            out.append(f"{len(self.missed_deep)} signal(s) deeper than {SHALLOW_M} m missed "
                       "(any deep miss fails)")
        if self.shallow_missed_percent >= SHALLOW_FAIL_PERCENT:
            out.append(f"{len(self.missed_shallow)} of {len(self.shallow)} signals to "
                       f"{SHALLOW_M} m missed ({self.shallow_missed_percent:.2f} % >= "
                       f"{SHALLOW_FAIL_PERCENT} %)")
        return out


def qa_verdict(original: list[MapTarget], qa: list[MapTarget], boxes: list[Box]) -> QAResult:
    """Match the QA team's signals inside ``boxes`` to the original team's signals."""
    from scipy.optimize import linear_sum_assignment

    if not boxes:
        raise InputError("QA needs at least one --box X0,Y0,X1,Y1")
    inside = [t for t in qa if in_boxes(t.x, t.y, boxes)]
    # Team signals just outside a box may be the same object located a little off.
    reach = max((match_radius(t.depth) for t in inside), default=0.0)
    grown = [(b[0] - reach, b[1] - reach, b[2] + reach, b[3] + reach) for b in boxes]
    team = [t for t in original if in_boxes(t.x, t.y, grown)]
    if not inside:
        return QAResult(boxes=boxes, qa_signals=[], missed=[])
    if not team:
        return QAResult(boxes=boxes, qa_signals=inside, missed=list(inside))
    qx = np.array([t.x for t in inside])
    qy = np.array([t.y for t in inside])
    tx = np.array([t.x for t in team])
    ty = np.array([t.y for t in team])
    d = np.hypot(qx[:, None] - tx[None, :], qy[:, None] - ty[None, :])
    r = np.array([match_radius(t.depth) for t in inside])
    big = 1e6
    cost = np.where(d <= r[:, None], d, big)
    rows, cols = linear_sum_assignment(cost)
    found: dict[int, tuple[int, float]] = {int(i): (int(j), float(d[i, j]))
                                           for i, j in zip(rows, cols, strict=True)
                                           if cost[i, j] < big}
    missed = [t for i, t in enumerate(inside) if i not in found]
    matched = [(inside[i], team[j], dist) for i, (j, dist) in sorted(found.items())]
    return QAResult(boxes=boxes, qa_signals=inside, missed=missed, matched=matched)


def check_boxes_inside(boxes: list[Box], extent: Box, what: str, tol: float = 0.5) -> None:
    """`InputError` for a box not inside the surveyed extent (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = extent
    for b in boxes:
        if not (b[0] >= x0 - tol and b[1] >= y0 - tol and b[2] <= x1 + tol
                and b[3] <= y1 + tol):
            raise InputError(
                f"QA box {','.join(f'{v:g}' for v in b)} is not inside {what} "
                f"(x {x0:.1f}..{x1:.1f}, y {y0:.1f}..{y1:.1f}): a box must lie in the "
                "surveyed area, in the same coordinates as the target lists")


def pick_boxes(area: Box, share: float, seed: int, size: float = BOX_M) -> list[Box]:
    """Random ``size`` x ``size`` boxes inside ``area`` covering at least ``share`` of it.

    Boxes are whole cells of a ``size`` lattice anchored at the area's lower-left
    corner, drawn without replacement, so they never overlap and always lie
    inside; the count is the smallest that covers the share.
    """
    if not (0.0 < share <= 1.0):
        raise InputError(f"--share must be in (0, 1], got {share!r}")
    x0, y0, x1, y1 = area
    # (y0 + 20) - y0 can come back as 19.999999999996: whole boxes to a nanometre
    nx, ny = int((x1 - x0) / size + 1e-9), int((y1 - y0) / size + 1e-9)
    cells = nx * ny
    need = math.ceil(share * (x1 - x0) * (y1 - y0) / (size * size) - 1e-9)
    need = max(1, need)
    if cells == 0:
        raise InputError(f"area {x1 - x0:g} x {y1 - y0:g} m holds no {size:g} x {size:g} m box")
    if need > cells:
        raise InputError(f"{share:g} of the area needs {need} boxes of {size:g} m but only "
                         f"{cells} fit inside it")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(cells, size=need, replace=False))
    return [(x0 + (k % nx) * size, y0 + (k // nx) * size, x0 + (k % nx + 1) * size,
             y0 + (k // nx + 1) * size) for k in (int(p) for p in pick)]
