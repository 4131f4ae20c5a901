"""Two fits of one object from two windows: finding the earlier target a new
fit lies on, and merging them into that target's next revision."""

from __future__ import annotations

import math
from dataclasses import replace

from acquisition.events import Target


def same_object(t: Target, earlier: list[Target], dist_m: float) -> Target | None:
    """The earlier target ``t`` lies on (nearest, within ``dist_m``), if any."""
    best, best_d = None, dist_m
    for e in earlier:
        d = math.hypot(e.x - t.x, e.y - t.y)
        if d <= best_d:
            best, best_d = e, d
    return best


def merge_targets(old: Target, new: Target) -> Target:
    """``old``'s next revision, holding ``new`` too: two fits of one object
    from two windows, the second fitted with the first's field subtracted.

    Two dipoles this close superpose to one with the summed moment; the
    position and depth are the moment-weighted means; the stronger fit's
    shape (method, line) and amplitude stand; uncertainties and quality are
    the larger; the flags of both, plus "merged".
    """
    wo, wn = old.moment_abs, new.moment_abs
    w = wo + wn
    a, b = (0.5, 0.5) if w <= 0 else (wo / w, wn / w)
    strong = old if wo >= wn else new
    return replace(
        strong, target_id=old.target_id, revision=old.revision + 1, t_ns=old.t_ns,
        x=a * old.x + b * new.x, y=a * old.y + b * new.y,
        depth=a * old.depth + b * new.depth,
        moment=(float(old.moment[0] + new.moment[0]), float(old.moment[1] + new.moment[1]),
                float(old.moment[2] + new.moment[2])),
        quality=max(old.quality, new.quality),
        sigma_x=max(old.sigma_x, new.sigma_x), sigma_y=max(old.sigma_y, new.sigma_y),
        sigma_depth=max(old.sigma_depth, new.sigma_depth),
        lanes=tuple(sorted({*old.lanes, *new.lanes})),
        flags=tuple(dict.fromkeys((*old.flags, *new.flags, "merged"))))
