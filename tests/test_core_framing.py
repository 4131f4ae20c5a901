"""Line framing: partial lines across reads, garbage, over-long lines; property tests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from acquisition.drivers.framing import LineFramer


def test_partial_lines_across_feeds():
    f = LineFramer(64)
    assert f.feed(b"abc") == []
    assert f.feed(b"def\r\ngh") == [b"abcdef"]
    assert f.feed(b"i\n\n") == [b"ghi"]
    assert f.pending == 0


def test_reset_forgets_the_old_half_line():
    f = LineFramer(64)
    f.feed(b"$UXG,1,2")
    f.reset()
    assert f.feed(b"3.5*1F\r\n$OK\r\n") == [b"3.5*1F", b"$OK"]  # the parser judges it
    assert f.stats.discarded_bytes == len(b"$UXG,1,2")


def test_overlong_line_discarded_and_next_line_kept():
    f = LineFramer(16)
    out = f.feed(b"x" * 40)  # no newline yet: buffer must not grow past the limit
    assert out == [] and f.pending == 0
    out = f.feed(b"yyy\nGOOD\n" + b"z" * 20 + b"\nFINE\n")
    assert out == [b"GOOD", b"FINE"]
    assert f.stats.overlong == 2


lines_st = st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=30)


@given(lines=lines_st, cuts=st.lists(st.integers(0, 2000), max_size=20))
def test_any_chunking_gives_the_same_lines(lines, cuts):
    data = b"".join(line + b"\n" for line in lines)
    whole = LineFramer(64).feed(data)
    f = LineFramer(64)
    pieces, last = [], 0
    for c in sorted(set(min(c, len(data)) for c in cuts)):
        pieces.append(data[last:c])
        last = c
    pieces.append(data[last:])
    chunked = [line for p in pieces for line in f.feed(p)]
    assert chunked == whole
    expected = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    assert whole == [ln for ln in expected if ln]
