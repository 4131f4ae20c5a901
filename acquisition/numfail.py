"""Count and log the numerical failures the fits take as "no fit".

Least squares, pseudo-inverses and solvers fail now and then on degenerate
windows (a singular matrix, a non-finite residual); the fitting code catches
those and goes on with "no fit here" (a cheap estimate, one source fewer).
That is the right answer for one window, but a run where it happens a
thousand times is a run to look at, so each is counted here (per thread,
plus a process total) and logged at DEBUG with where it happened. The
pipelines add what their own calls caused to their stats
(`PipelineStats.fit_failures`, `BoreholeResult.fit_failures`) and log a
warning with the count.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

log = logging.getLogger("uxo.numerics")

_local = threading.local()
_lock = threading.Lock()
#: Every failure in the process since start, by place.
totals: Counter[str] = Counter()


def swallowed(where: str, exc: BaseException) -> None:
    """Record one numerical failure at ``where`` ("module.function") taken as no fit."""
    _local.count = getattr(_local, "count", 0) + 1
    with _lock:
        totals[where] += 1
    log.debug("%s: numerical failure handled (no fit, or a fallback): %s: %s", where,
              type(exc).__name__, exc)


def thread_count() -> int:
    """Failures counted in this thread so far (take the difference around a call)."""
    return int(getattr(_local, "count", 0))
