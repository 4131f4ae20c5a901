"""Batch helpers shared by the line parsers: bulk number conversion, checksums, clocks.

Per-line Python costs about a microsecond, so the fast parsers work on whole
batches: one compiled regex checks the structure of every line, then every
number of the batch is converted in one call (`floats`), which uses NumPy's
text reader. The patterns use possessive quantifiers (``[0-9]++``, Python
3.11+): a number's digit run is never followed by another digit, so they match
the same lines without the backtracking bookkeeping, about twice as fast.
NumPy's reader rounds correctly, like Python's ``float()``, so a fast parser
gives bit-identical values to its per-line reference twin.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from acquisition.clock import NS_PER_S
from acquisition.drivers.base import ParsedLines

DAY_NS = 86_400 * NS_PER_S


def floats(text: bytes, expected: int) -> np.ndarray | None:
    """Whitespace-separated decimal numbers in ``text``; None unless exactly ``expected``.

    Also None when a number overflowed to infinity (``1e999``): the caller's
    reference path then rejects that line, which no instrument sends.
    """
    if expected == 0:
        return np.empty(0)
    try:
        out = np.fromstring(text, sep=" ")
    except ValueError:
        return None
    if out.shape[0] != expected or np.isinf(out).any():
        return None
    return out


def all_match(pattern: re.Pattern[bytes], lines: list[bytes]) -> bool:
    """True when every line matches ``pattern`` (a ``^...$`` pattern compiled with re.M).

    Lines never contain a newline (the framer splits on it), so each line
    matches at most once and equal counts mean every line matched. (A caller's
    line holding a newline is caught by counting newlines in the joined text,
    at C speed, instead of a per-line test.)
    """
    text = b"\n".join(lines)
    if text.count(b"\n") != len(lines) - 1:
        return False
    return len(pattern.findall(text)) == len(lines)


def good_mask(pattern: re.Pattern[bytes], lines: list[bytes]) -> np.ndarray:
    """Boolean mask of the lines that fully match ``pattern``."""
    m = pattern.fullmatch
    return np.fromiter((m(ln) is not None for ln in lines), dtype=bool, count=len(lines))


def hybrid(
    lines: list[bytes],
    pattern: re.Pattern[bytes],
    convert: Callable[[list[bytes]], ParsedLines],
    reference: Callable[[list[bytes]], ParsedLines],
) -> ParsedLines:
    """Fast parse of a batch: ``convert`` every line ``pattern`` accepts, ``reference`` the rest.

    A clean batch costs one regex pass plus one bulk conversion. In a dirty
    batch the rejected lines go to the per-line reference parser, which gives
    the reasons (and keeps banner/info lines). Should the reference accept a
    line the pattern refused, the whole batch is parsed by the reference, so the
    result is always what the reference would say.
    """
    if all_match(pattern, lines):
        return convert(lines)
    mask = good_mask(pattern, lines)
    bad = np.flatnonzero(~mask).tolist()
    ref = reference([lines[i] for i in bad])
    if ref.n:
        return reference(lines)
    good_idx = np.flatnonzero(mask).tolist()
    good = convert([lines[i] for i in good_idx])
    good.rejects = sorted([(good_idx[j], r) for j, r in good.rejects]
                          + [(bad[j], r) for j, r in ref.rejects])
    good.info = ref.info
    return good


def xor_checksums(lines: list[bytes], starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """XOR of bytes ``[starts[i], stops[i])`` of each line, vectorised over the batch.

    ``starts``/``stops`` are offsets inside each line; every range must be non-empty.
    """
    joined = b"".join(lines)
    u = np.frombuffer(joined, dtype=np.uint8)
    lens = np.fromiter((len(ln) for ln in lines), dtype=np.int64, count=len(lines))
    base = np.concatenate(([0], np.cumsum(lens)[:-1])) if len(lines) else lens
    a = base + starts
    b = base + stops
    # reduceat over [a0, b0, a1, b1, ...] reduces each [a_i, b_i) and each gap;
    # the gaps are thrown away (odd positions).
    idx = np.empty(2 * len(lines), dtype=np.int64)
    idx[0::2] = a
    idx[1::2] = b
    if len(u) == 0:
        return np.zeros(len(lines), dtype=np.uint8)
    ext = np.concatenate((u, [0])).astype(np.uint8)
    return np.bitwise_xor.reduceat(ext, idx)[0::2]


def xor_checksum(payload: bytes) -> int:
    """NMEA 0183 checksum: XOR of the bytes between ``$`` and ``*``."""
    c = 0
    for b in payload:
        c ^= b
    return c


def unwrap_time_of_day(tod_ns: np.ndarray, prev_ns: int | None) -> np.ndarray:
    """Time-of-day stamps to a continuous clock across midnight roll-overs.

    A step back of more than half a day is a new day; smaller steps back are
    kept as they are (a clock jump the block assembly flags). ``prev_ns`` is the
    unwrapped time of the previous sample (previous batch), or None at start.
    """
    tod = np.asarray(tod_ns, dtype=np.int64)
    if tod.size == 0:
        return tod.copy()
    day0 = 0
    prev_tod = None
    if prev_ns is not None:
        day0 = int(prev_ns // DAY_NS)
        prev_tod = int(prev_ns - day0 * DAY_NS)
    seq = tod if prev_tod is None else np.concatenate(([prev_tod], tod))
    rolls = np.cumsum(np.diff(seq) < -DAY_NS // 2)
    if prev_tod is None:
        rolls = np.concatenate(([0], rolls))
    return tod + (day0 + rolls) * DAY_NS
