"""Output files are written whole and never through a symlink (library and commands)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from dsp_synth import induced, survey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.cli import main
from acquisition.outfile import OutputError, open_output, write_output
from acquisition.survey_csv import write_survey_csv


def test_a_symlink_at_the_output_name_is_refused(tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "out.csv"
    os.symlink(victim, link)
    with pytest.raises(OutputError, match="symlink"):
        write_output(link, "x")
    assert victim.read_text() == "precious" and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "victim.txt"]


def test_new_and_replaced_files_get_normal_permissions_and_no_leftovers(tmp_path) -> None:
    p = tmp_path / "t.csv"
    write_output(p, "one")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
    write_output(p, "two")
    assert p.read_text() == "two" and [x.name for x in tmp_path.iterdir()] == ["t.csv"]


def test_a_failed_write_leaves_the_old_file(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("old")
    with pytest.raises(RuntimeError), open_output(p) as fh:
        fh.write("half")
        raise RuntimeError("crash")
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["t.csv"]


def test_a_device_is_written_directly() -> None:
    write_output(os.devnull, "discarded")
    assert Path(os.devnull).exists()


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text())
def test_text_round_trips(tmp_path, text: str) -> None:
    p = tmp_path / "r.txt"
    write_output(p, text)
    assert p.read_bytes() == text.encode("utf-8")


def test_process_and_plan_refuse_a_planted_symlink_in_one_line(tmp_path, capsys) -> None:
    x, y, v, _lane, geo = survey([induced(2.0, 4.0, 0.6, 1.0)], n_lanes=4, length=8.0)
    src = write_survey_csv(tmp_path / "s.csv", x, y, v, metadata=geo)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for argv in (["process", str(src)], ["borehole", "plan", "--rect", "0,0,10,8"]):
        link = tmp_path / "out.csv"
        os.symlink(victim, link)
        rc = main([*argv, "-o", str(link)])
        err = capsys.readouterr().err
        assert rc == 2 and "Traceback" not in err and "symlink" in err
        assert len(err.strip().splitlines()) == 1
        assert victim.read_text() == "precious"
        link.unlink()
