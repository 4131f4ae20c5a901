"""The chunked, vectorised survey CSV parser against its plain line-by-line twin.

Generated files mix clean numeric rows (the vectorised path) with every kind of
bad or odd row (the line path), in pieces as small as a few bytes, so piece
boundaries fall everywhere: both parsers must give the same arrays, metadata,
bad rows and line numbers, or the same refusal.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from survey_csv_reference import reference_parse

from acquisition import survey_csv
from acquisition.survey_csv import SurveyCSVError, parse_survey_csv, read_survey_csv

_GOOD_TOKEN = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["1.", ".5", "+2", "-0", "1e5", "1E-3", "00012", "1e400"]))
_ODD_TOKEN = st.sampled_from(["", "nan", "inf", "-inf", "abc", " 1.5 ", "1_0", '"2"', "1e",
                              "\u0661", "2.5\t", "NaN", "0x10", "1,5", "\ufffd"])


@st.composite
def survey_texts(draw) -> str:
    cols = draw(st.permutations(["x", "y", "value", *draw(st.lists(
        st.sampled_from(["t", "lane", "q", "Lane2"]), unique=True, max_size=3))]))
    out: list[str] = []
    if draw(st.booleans()):
        out.append("# uxo-survey v1")
    for _ in range(draw(st.integers(0, 3))):
        out.append(f"# {draw(st.sampled_from(['kind', 'op', 'x']))}: "
                   f"{draw(st.text(alphabet='ab: 01', max_size=5))}")
    out.append(",".join(cols))
    odd_share = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3]))
    n = draw(st.integers(0, 60))
    for _ in range(n):
        r = draw(st.floats(0, 1))
        if r < odd_share / 3:
            out.append(draw(st.sampled_from(["", "# note", "1,2", "   ", "1,2,3,4,5,6,7"])))
            continue
        toks = []
        for c in cols:
            if draw(st.floats(0, 1)) < odd_share:
                toks.append(draw(_ODD_TOKEN))
            elif c == "lane":
                toks.append(str(draw(st.integers(-3, 40))))
            else:
                toks.append(draw(_GOOD_TOKEN))
        out.append(",".join(toks))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return end.join(out) + draw(st.sampled_from(["", end]))


def _same(a, b) -> None:
    assert a.metadata == b.metadata and a.format_line == b.format_line
    for name in ("x", "y", "value", "t", "lane", "line_numbers"):
        u, v = getattr(a, name), getattr(b, name)
        if u is None or v is None:
            assert u is None and v is None, name
            continue
        assert u.dtype == v.dtype, name
        np.testing.assert_array_equal(u, v, err_msg=name)
    assert a.extra.keys() == b.extra.keys()
    for k in a.extra:
        np.testing.assert_array_equal(a.extra[k], b.extra[k])
    assert [(r.line, r.reason) for r in a.bad_rows] == [(r.line, r.reason) for r in b.bad_rows]


def _both(text: str, share: float = 0.1):
    try:
        ref = reference_parse(text, max_bad_share=share)
    except SurveyCSVError as exc:
        with pytest.raises(SurveyCSVError) as got:
            parse_survey_csv(text, max_bad_share=share)
        assert str(got.value) == str(exc)
        return None
    new = parse_survey_csv(text, max_bad_share=share)
    _same(new, ref)
    return new


@settings(max_examples=400, deadline=None)
@given(text=survey_texts(), chunk=st.sampled_from([1, 7, 64, 4096]),
       share=st.sampled_from([0.1, 1.0]))
def test_chunked_parser_equals_line_parser(text: str, chunk: int, share: float) -> None:
    with _chunk(chunk):
        ref = _both(text, share)
        if ref is not None:  # bytes give the same answer as text
            _same(parse_survey_csv(text.encode("utf-8"), max_bad_share=share), ref)


@contextlib.contextmanager
def _chunk(n: int):
    old = survey_csv.CHUNK_SIZE
    survey_csv.CHUNK_SIZE = n
    try:
        yield
    finally:
        survey_csv.CHUNK_SIZE = old


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=300), chunk=st.sampled_from([1, 5, 4096]))
def test_random_bytes_read_like_the_line_parser(tmp_path_factory, raw: bytes,
                                                chunk: int) -> None:
    data = b"x,y,value\n" + raw
    path = tmp_path_factory.mktemp("b") / "s.csv"
    path.write_bytes(data)
    ref = reference_parse(data.decode("utf-8", errors="replace"), max_bad_share=1.0)
    with _chunk(chunk):
        _same(read_survey_csv(path, max_bad_share=1.0), ref)


def test_large_clean_file_uses_whole_chunks_and_keeps_line_numbers(tmp_path) -> None:
    n = 50_000
    rows = [f"{i * 0.1!r},{i * 0.25!r},1.5,{i % 9}" for i in range(n)]
    rows[30] = "3.0,oops,1.5,0"  # one bad row, in the first chunk
    text = "# uxo-survey v1\n# kind: total\nt,x,y,value\n" + "\n".join(rows) + "\n"
    p = tmp_path / "big.csv"
    p.write_text(text)
    d = read_survey_csv(p)
    ref = reference_parse(text)
    _same(d, ref)
    assert d.n == n - 1 and [b.line for b in d.bad_rows] == [4 + 30]
    assert d.line_numbers[0] == 4 and d.line_numbers[-1] == n + 3
