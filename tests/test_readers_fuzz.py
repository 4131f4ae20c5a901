"""Fuzz every survey reader: random bytes and mutated valid files.

Whatever the bytes, `read_survey` returns a consistent survey or raises
`SurveyReadError` naming the file; no other exception escapes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.survey import SurveyReadError, read_survey

DATA = Path(__file__).parent / "data"
SAMPLES = {
    "stn": (DATA / "pymagra_Block1_excerpt.stn").read_bytes()[:3000],
    "magmap-xyz": (DATA / "geophpy_Mag_ex1_excerpt.dat").read_bytes()[:2000],
    "sensys": (DATA / "sensys_magwalk.csv").read_bytes(),
    "geosoft-xyz": (DATA / "geosoft_line.xyz").read_bytes(),
    "gsm19": (DATA / "gsm19_walking_grad.wg").read_bytes(),
    "table": b"Easting;Northing;Grad [nT/m]\n713000,5;1861000;1,5\n713001;1861000;-2\n"
             b"713002;1861000,5;0,25\n",
}
# the STN and MagMap excerpts are cut at a byte count: end it at a whole line
for _k in ("stn", "magmap-xyz"):
    SAMPLES[_k] = SAMPLES[_k][:SAMPLES[_k].rfind(b"\n") + 1]
FORMATS = [*SAMPLES, None]  # None: sniffed
TOKENS = [b"\n", b"\r\n", b";", b",", b" ", b"*", b"0", b"-", b".", b"nan", b"1e999", b"\x00",
          b"\xef\xbb\xbf", b"3 ", b"LINE 5\n", b"0;0", b"/", b"#", b"\xff", b"99 0 0\n"]


def _check(path: Path, fmt: str | None, crs: bool) -> None:
    try:
        s = read_survey(path, format=fmt, metadata={"crs": "EPSG:32648"} if crs else None,
                        max_bad_share=0.5)
    except SurveyReadError as exc:
        assert str(path) in str(exc)
        return
    n = s.n
    assert n >= 1 and s.y.shape == s.value.shape == s.line_numbers.shape == (n,)
    assert np.isfinite(s.value).all()
    assert s.t is None or s.t.shape == (n,)
    assert s.lane is None or s.lane.shape == (n,)
    assert n <= s.rows_seen
    for arr in s.extra.values():
        assert arr.shape == (n,)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=600), fmt=st.sampled_from(FORMATS), crs=st.booleans())
def test_random_bytes(tmp_path_factory, body, fmt, crs):
    p = tmp_path_factory.mktemp("rb") / "f.dat"
    p.write_bytes(body)
    _check(p, fmt, crs)


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(SAMPLES)))
    data = bytearray(SAMPLES[name])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dupline", "cut"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 40))]
        elif op == "dupline":
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            end = len(data) if end < 0 else end + 1
            data[end:end] = data[start:end]
        else:
            del data[at:]
    return name, bytes(data)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(), forced=st.booleans(), crs=st.booleans())
def test_mutated_valid_files(tmp_path_factory, case, forced, crs):
    name, body = case
    p = tmp_path_factory.mktemp("mut") / "f.dat"
    p.write_bytes(body)
    _check(p, name if forced else None, crs)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_read_clean(tmp_path, name):
    p = tmp_path / "f.dat"
    p.write_bytes(SAMPLES[name])
    s = read_survey(p, metadata={"crs": "EPSG:32648"})
    assert s.format == name and s.n >= 3
    damaged = [b.line for b in s.bad_rows if not b.no_data]
    # the samples' deliberate garbage rows
    assert damaged == {"sensys": [6], "gsm19": [10]}.get(name, [])
