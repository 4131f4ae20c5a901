"""UXG gradline protocol: published example, checksums, bad lines never lose good ones."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from acquisition.drivers.gradline import checksum, format_line, parse_info, parse_lines


def test_format_and_parse_example():
    line = format_line(7, 12.3, 0.502, 10.1, [-1.234])
    assert line == b"$UXG,7,12.300,0.502,10.100,-1.234*" + f"{checksum(line[1:-5]):02X}".encode() \
        + b"\r\n"
    p = parse_lines([line.rstrip()])
    assert p.n == 1 and not p.rejects
    assert p.counter.tolist() == [7]
    assert p.device_ns.tolist() == [12_300_000_000]
    assert p.positions.tolist() == [[0.502, 10.1]]
    assert p.values.tolist() == [[-1.234]]


def test_each_bad_line_rejected_with_reason_good_ones_kept():
    good = [format_line(i, i / 10, 0.5, i / 10, [float(i)]).rstrip() for i in range(4)]
    bad_ck = good[1][:-2] + b"00"
    flipped = good[2].replace(b"0.500", b"0.501")  # bit error: checksum no longer matches
    lines = [good[0], bad_ck, b"garbage\xff\x00", flipped, good[3],
             b"$UXG,1,2,3*00", b"# serial=SIM7 rate=10"]
    p = parse_lines(lines)
    assert p.counter.tolist() == [0, 3]
    reasons = dict(p.rejects)
    assert reasons == {1: "checksum", 2: "no_prefix", 3: "checksum", 5: "checksum"}
    assert p.info == {"serial": "SIM7", "rate": "10"}


def test_missing_position_is_nan():
    line = format_line(1, 0.1, math.nan, math.nan, [2.0]).rstrip()
    p = parse_lines([line])
    assert np.isnan(p.positions).all() and p.values[0, 0] == 2.0


def test_garbage_before_prefix_on_same_line_is_tolerated():
    line = b"\x00\x13zz" + format_line(5, 0.5, 1.0, 2.0, [3.0]).rstrip()
    assert parse_lines([line]).counter.tolist() == [5]


def test_parse_info_ignores_junk():
    assert parse_info(b"# a=1 junk b=x=y \xff") == {}
    assert parse_info(b"# a=1 junk b=x=y") == {"a": "1", "b": "x=y"}


good_line = st.builds(
    lambda c, t, x, y, v: format_line(c, t, x, y, [v]).rstrip(),
    st.integers(0, 10**9), st.floats(0, 1e6), st.floats(-1e4, 1e4), st.floats(-1e4, 1e4),
    st.floats(-1e5, 1e5),
)


@given(st.lists(st.one_of(good_line, st.binary(max_size=60)), max_size=40))
def test_never_raises_and_a_bad_line_never_costs_a_good_one(lines):
    lines = [ln.replace(b"\n", b"") for ln in lines]
    batch = parse_lines(lines)
    singles = [parse_lines([ln]) for ln in lines]
    # The batch keeps exactly the lines that decode on their own, in order.
    assert batch.counter.tolist() == [c for s in singles for c in s.counter.tolist()]
    assert batch.values.tolist() == [v for s in singles for v in s.values.tolist()]
    info_lines = sum(1 for ln in lines if ln.startswith(b"#"))
    assert batch.n + len(batch.rejects) + info_lines == len(lines)


@given(good_line)
def test_every_well_formed_line_decodes(line):
    assert parse_lines([line]).n == 1
