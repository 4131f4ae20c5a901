"""Batch helpers shared by the line parsers: bulk number conversion, checksums, clocks.

Per-line Python costs about a microsecond, so the fast parsers work on whole
batches. Two ways:

- regex + bulk conversion (`all_match`, `floats`, `hybrid`): one compiled regex
  checks the structure of every line, then every number of the batch is
  converted in one call, NumPy's text reader. The patterns use possessive
  quantifiers (``[0-9]++``, Python 3.11+): a digit run is never followed by
  another digit, so they match the same lines without the backtracking
  bookkeeping, about twice as fast. NumPy's reader rounds correctly, like
  Python's ``float()``, so values are bit-identical to the per-line twin.
- vectorised scan (`scan_numbers`, `exact_scale`, `masked`): lines of plain
  decimal numbers are checked and converted with a few NumPy passes over a
  uint8 view of the bytes, no regex; see `scan_numbers`. About twice as fast
  again where the regex was the cost.

`chunked` runs a parser over cache-sized slices of a large batch (`CHUNK_BYTES`)
and joins the results, carrying the parser's state from slice to slice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

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


#: Text bytes per chunk in `chunked`. A chunk's working set (its text, byte masks,
#: the point-free copy, int64 position arrays: ~10x the text) then stays in a
#: core's L2 cache (2 MB on the bench machine); a 2 MB batch in one go runs every
#: pass from L3 or memory, ~1.5x slower. Measured: 100-300 KB all alike.
CHUNK_BYTES = 200_000
#: Fewest lines per chunk: below this, per-call overhead outweighs the cache gain.
MIN_CHUNK_LINES = 256


def chunk_lines(lines: list[bytes], scale: float = 1.0) -> int:
    """Lines per chunk for `chunked`: ``scale * CHUNK_BYTES`` of text, judged by the
    first line's length (a parser with more fixed cost per call takes a larger scale)."""
    per = len(lines[0]) + 1 if lines else 1
    return max(MIN_CHUNK_LINES, int(scale * CHUNK_BYTES) // per)


def chunked(lines: list[bytes], size: int,
            parse: Callable[[list[bytes]], ParsedLines]) -> ParsedLines:
    """``parse`` applied to consecutive chunks of ``size`` lines, results joined.

    For parsers that fold over their lines (state, a header row, a day carried
    from line to line), ``parse`` carries that state from one chunk to the next,
    so the joined result is the one of a single call: rows in line order,
    reject line numbers shifted back to the batch, ``info`` merged with later
    chunks winning, as a later line would.
    """
    if len(lines) <= size:
        return parse(lines)
    parts = [parse(lines[a : a + size]) for a in range(0, len(lines), size)]
    rejects = [(i + a, r) for a, p in zip(range(0, len(lines), size), parts, strict=True)
               for i, r in p.rejects]
    info: dict[str, str] = {}
    for p in parts:
        info.update(p.info)

    def cat(arrays: list[np.ndarray | None]) -> np.ndarray | None:
        present = [a for a in arrays if a is not None]
        if len(present) < len(arrays):
            return None
        return np.concatenate(present)

    return ParsedLines(values=np.concatenate([p.values for p in parts]),
                       positions=cat([p.positions for p in parts]),
                       device_ns=cat([p.device_ns for p in parts]),
                       counter=cat([p.counter for p in parts]), rejects=rejects, info=info)


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


#: Largest device time a parser accepts (ns): the int64 nanosecond clock ends here.
NS_LIMIT = 9.2e18


def drop_overflow(out: ParsedLines, rows: np.ndarray | None = None,
                  also: np.ndarray | None = None) -> ParsedLines:
    """Reject (``number``) the rows whose values overflowed to infinity after unit scaling.

    A number that fits a double can still overflow once scaled (``1e308`` T to nT,
    a configured ``*1e10``); no instrument sends such a value, so the row is
    rejected like ``1e999`` is, not passed on as ``inf``. ``rows[i]`` is the batch
    line of row ``i`` (default: row i is line i); ``also`` marks more rows to reject
    the same way (e.g. a scaled time past the int64 clock). NaN (an empty field) stays.
    """
    bad = np.isinf(out.values).any(axis=1)
    if also is not None:
        bad |= also
    if not bad.any():
        return out
    keep = ~bad
    line = np.arange(out.n) if rows is None else np.asarray(rows)
    out.rejects = sorted(out.rejects + [(int(line[i]), "number") for i in np.flatnonzero(bad)])
    out.values = out.values[keep]
    for name in ("positions", "device_ns", "counter"):
        a = getattr(out, name)
        if a is not None:
            setattr(out, name, a[keep])
    return out


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


# --- vectorised number scanner ----------------------------------------------------------------
#: Exact powers of ten: an integer mantissa below 2**53 times or over one of these is
#: one correctly rounded IEEE operation, so it equals ``float()`` of the decimal
#: text (Clinger's fast path).
POW10 = np.array([float(10**k) for k in range(23)])
#: Digits in a mantissa the scanner converts itself (10**15 < 2**53).
MAX_DIGITS = 15
_DIGITS = b"0123456789"
_ALLOWED = {sep: _DIGITS + b"\n-." + bytes([sep]) for sep in (32, 44)}
_TO_COMMA = {sep: bytes.maketrans(b"\n" + bytes([sep]), b",,") for sep in (32, 44)}


@dataclass(slots=True)
class NumberFields:
    """Per-field view of a batch of lines made of decimal numbers only.

    Fields are numbered over the whole batch; line ``i`` holds fields
    ``first[i]:first[i + 1]``. ``line_ok[i]`` is True when every field of line
    ``i`` is ``-?[0-9]+(\\.[0-9]*)?`` (or empty, when allowed) with at most
    `MAX_DIGITS` digits. The per-field arrays are set only when every line is ok
    (``complete``): ``value`` (float64, bit-identical to ``float()``; NaN for an
    empty field), ``mant`` (the digits as an integer), ``k`` (digits after the
    point), ``neg``, ``dot`` (0/1), ``empty``, ``size`` (bytes). ``k`` and ``dot`` may be a
    read-only (n, m) view (per-column layout): index them through
    ``.reshape(n, m)`` or ``.reshape(-1)``. ``first`` is None
    when the text did not hold ``n`` lines.
    """

    line_ok: np.ndarray
    first: np.ndarray | None = None
    complete: bool = False
    value: np.ndarray | None = None
    ints: np.ndarray | None = None
    k: np.ndarray | None = None
    neg: np.ndarray | None = None
    dot: np.ndarray | None = None
    empty: np.ndarray | None = None
    size: np.ndarray | None = None


def exact_scale(mant: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """``mant * 10**p`` rounded once, as ``float()`` rounds ``"<mant>e<p>"``.

    ``mant`` must be below 2**53 in magnitude; None when some ``|p| > 22`` (the
    product is then not one exact IEEE operation).
    """
    if p.size and int(np.abs(p).max()) > 22:
        return None
    val = np.multiply(mant, POW10[np.maximum(p, 0)])
    return np.divide(val, POW10[np.maximum(-p, 0)], out=val)


def scan_numbers(padded: bytes, n: int, sep: int = 44, *, empty: bool = False,
                 m: int | None = None) -> NumberFields:
    """Check and convert ``n`` lines of ``sep``-separated decimal numbers at once.

    ``padded`` is ``b"\\n" + b"\\n".join(lines) + b"\\n"`` (no line may hold a
    newline); ``sep`` is ``,`` or a space; ``m`` the usual fields per line, if
    there is one. A clean batch costs a handful of passes over a uint8 view of
    the bytes, all at C speed, instead of a regex step per byte:

    - the alphabet (digits, ``sep``, newline, ``-``, ``.``) by one
      ``bytes.translate`` deletion; separators are then the bytes below ``-``;
    - ``-`` only at the start of a field: the count of ``-`` equals the count
      of fields starting with one;
    - points: instruments print each column with fixed decimals, so the first
      line's layout (digits after the point per column) is checked on every
      field with one gather, plus the total count of points. Otherwise points
      per field come from how far each separator moves once points are
      deleted. At most one per field, with a digit before it; 1 to
      `MAX_DIGITS` digits per field;
    - one integer parse of the point-free text (``np.fromstring``, ~15 ns a
      number) and the exact ``mantissa / 10**k`` (see `POW10`).

    A batch failing a check is scanned again byte by byte (neighbour rules:
    ``-`` at a field start and before a digit, ``.`` after a digit, no other
    byte) to tell which lines are at fault; ``line_ok`` then marks the lines a
    second scan of just those lines will convert.
    """
    if n == 0:
        z = np.empty(0, dtype=np.int64)
        return NumberFields(line_ok=np.empty(0, dtype=bool), first=np.zeros(1, np.int64),
                            complete=True, value=np.empty(0), ints=z, k=z,
                            neg=np.empty(0, bool), dot=z, empty=np.empty(0, bool), size=z)
    u = np.frombuffer(padded, dtype=np.uint8)
    if sep in _ALLOWED and not padded.translate(None, _ALLOWED[sep]):
        out = _scan_clean(padded, u, n, sep, empty, m)
        if out is not None:
            return out
    ok, first = _line_mask(u, n, sep, empty)
    return NumberFields(line_ok=ok, first=first)


def _column_layout(padded: bytes, sep: int, m: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(has a point, digits after it) per column of the first line, or None."""
    line = padded[1 : padded.index(b"\n", 1)]
    fields = line.split(bytes([sep]))
    if len(fields) != m:
        return None
    dot = np.array([b"." in f for f in fields])
    k = np.array([len(f) - f.index(b".") - 1 if b"." in f else 0 for f in fields])
    return dot, k


@lru_cache(maxsize=8)
def _bounds(n: int, cdot: bytes, ck: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Least and most bytes (sign and digits) per field of ``n`` lines with a column
    layout, tiled over the batch: one flat compare each instead of a per-column
    reduction (slow along a short axis). Cached, a few only: chunks mostly share ``n``."""
    dot = np.frombuffer(cdot, dtype=bool).astype(np.int64)
    k = np.frombuffer(ck, dtype=np.int64)
    lo, hi = np.tile(dot + k + 1, n), np.tile(dot + MAX_DIGITS, n)
    lo.flags.writeable = hi.flags.writeable = False
    return lo, hi


def _scan_clean(padded: bytes, u: np.ndarray, n: int, sep: int, empty: bool,
                m: int | None) -> NumberFields | None:
    spos = np.flatnonzero(u < 45)  # separators and newlines (the alphabet is checked)
    nf = spos.shape[0] - 1
    # n + 1 newlines in all, each m-th separator one of them: m fields a line.
    regular = m is not None and nf == n * m and (u[spos[::m]] == 10).all() \
        and np.count_nonzero(u == 10) == n + 1
    first = np.arange(0, nf + 1, m) if regular else np.flatnonzero(u[spos] == 10)
    if first.shape[0] != n + 1:
        return None
    end = spos[1:]
    neg = u[spos[:-1] + 1] == 45
    if np.count_nonzero(u == 45) != np.count_nonzero(neg):
        return None
    text = padded.translate(_TO_COMMA[sep], b".")  # what is parsed, points dropped
    size = np.subtract(end, spos[:-1])
    size -= 1
    ndots = int(np.count_nonzero(u == 46))
    layout = None
    if regular and not empty and m is not None:
        layout = _column_layout(padded, sep, m)
    if layout is not None:
        cdot, ck = layout
        assert m is not None  # a layout comes from regular lines only
        dcols = np.flatnonzero(cdot)
        # Digits and sign per field against the column's bounds: a digit before
        # the point, at most MAX_DIGITS digits. The digit before the point keeps
        # each expected point inside its own field, so the points found are
        # distinct and, by the count, the only ones.
        body = np.subtract(size, neg)
        lo, hi = _bounds(n, cdot.tobytes(), ck.tobytes())
        out = body < lo
        out |= body > hi
        if ndots != n * dcols.shape[0] or out.any() \
                or (u[end.reshape(n, m)[:, dcols] - (ck[dcols] + 1)] != 46).any():
            layout = None  # the general path below decides
        else:
            dot = np.broadcast_to(cdot.astype(np.int64), (n, m))
            k = np.broadcast_to(ck, (n, m))
            kdiv = POW10[ck]
            isempty = np.zeros(nf, dtype=bool)  # every field holds a digit (checked)
    if layout is None:
        start = spos[:-1] + 1
        k = np.zeros(nf, dtype=np.int64)
        if ndots:
            spos2 = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == 44)
            if spos2.shape[0] != nf + 1:
                return None
            dot = np.diff(spos - spos2)
            if dot.max() > 1:
                return None
            fx = np.flatnonzero(dot)
            xpos = np.flatnonzero(u == 46)
            if (xpos <= start[fx] + neg[fx]).any():
                return None  # no digit before the point
            k[fx] = end[fx] - xpos - 1
        else:
            dot = np.zeros(nf, dtype=np.int64)
        kdiv = POW10[k]
        isempty = size == 0
        ndig = size - neg - dot
        if empty:
            if ndig.max() > MAX_DIGITS or (ndig[~isempty] < 1).any():
                return None
        elif ndig.min() < 1 or ndig.max() > MAX_DIGITS:
            return None
    nint = nf - int(np.count_nonzero(isempty)) if empty else nf
    try:
        if nint == nf:
            # A single-character separator parses faster than a whitespace run.
            ints = np.fromstring(text[1:-1], dtype=np.int64, sep=",")
        elif nint:
            ints = np.fromstring(text.replace(b",", b" "), dtype=np.int64, sep=" ")
        else:
            ints = np.empty(0, dtype=np.int64)
    except ValueError:
        return None  # not expected after the checks above; the byte rules decide
    if ints.shape[0] != nint:
        return None
    if nint != nf:
        full = np.zeros(nf, dtype=np.int64)
        full[~isempty] = ints
        ints = full
    if layout is not None:
        val = np.divide(ints.reshape(n, -1), kdiv).reshape(nf)
    else:
        val = np.divide(ints, kdiv)
    zero = ints == 0
    if zero.any():
        val[zero & neg] = -0.0  # "-0.0": float() keeps the sign
    if nint != nf:
        val[isempty] = np.nan
    return NumberFields(line_ok=np.ones(n, dtype=bool), first=first, complete=True,
                        value=val, ints=ints, k=k, neg=neg, dot=dot, empty=isempty,
                        size=size)


def _line_mask(u: np.ndarray, n: int, sep: int,
               empty: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Lines of a dirty batch that `_scan_clean` accepts on their own (byte rules),
    and the index of each line's first field."""
    s = (u == sep) | (u == 10)
    d = (u - np.uint8(48)) < 10
    m = u == 45
    x = u == 46
    bad = ~(s | d | m | x)[1:]
    bad |= m[1:] > s[:-1]  # '-' only at the start of a field
    bad |= m[:-1] > d[1:]  # ... and before a digit
    bad |= x[1:] > d[:-1]  # '.' after a digit
    if not empty:
        bad |= s[:-1] & s[1:]
    spos = np.flatnonzero(s)
    isnl = u[spos] == 10
    nl = spos[isnl]
    ok = np.ones(n, dtype=bool)
    if nl.shape[0] != n + 1:
        ok[:] = False
        return ok, None
    ok[_line_of(np.flatnonzero(bad) + 1, nl)] = False
    # Per field: at most one point, at most MAX_DIGITS digits.
    xpos = np.flatnonzero(x)
    fid = np.searchsorted(spos, xpos) - 1
    dots = np.bincount(fid, minlength=spos.shape[0] - 1)
    length = np.diff(spos) - 1 - dots - m[spos[:-1] + 1]
    wrong = np.flatnonzero((dots > 1) | (length > MAX_DIGITS))
    ok[_line_of(spos[wrong] + 1, nl)] = False
    return ok, np.flatnonzero(isnl)


def _line_of(pos: np.ndarray, nl: np.ndarray) -> np.ndarray:
    """Line numbers of positions in a padded batch; a newline belongs to the line it ends."""
    return np.searchsorted(nl, pos, side="left") - 1


def masked(lines: list[bytes], ok: np.ndarray, fast: Callable[[list[bytes]], object],
           reference: Callable[[list[bytes]], ParsedLines],
           fallback: Callable[[list[bytes]], ParsedLines]) -> ParsedLines:
    """Combine a fast parse of the lines ``ok`` marks with the reference for the rest.

    The lines not ``ok`` go to ``reference``, which gives the reject reasons and
    banner ``info``. If it accepts one of them (a valid line the fast path does
    not take, e.g. a number with 16 digits), or the fast path cannot take the
    ``ok`` lines after all, the whole batch goes to ``fallback``, so the result
    is always what the reference would say. ``fast`` returns a `ParsedLines` for
    lines it fully converts, anything else otherwise.
    """
    bad = np.flatnonzero(~ok).tolist()
    ref = reference([lines[i] for i in bad])
    if ref.n:
        return fallback(lines)
    good_idx = np.flatnonzero(ok).tolist()
    good = fast([lines[i] for i in good_idx])
    if not isinstance(good, ParsedLines):
        return fallback(lines)
    good.rejects = sorted([(good_idx[j], r) for j, r in good.rejects]
                          + [(bad[j], r) for j, r in ref.rejects])
    good.info = ref.info
    return good
