"""``uxo daily``: area, signals and targets by class per team and day from a day's folder."""

from __future__ import annotations

import csv

import pytest
from maps_helpers import pole_source, record_two_detectors, write_survey

from acquisition.cli import main

OBJ = [pole_source(5.5, 8.3, 0.8, 1.0), pole_source(2.5, 14.0, 1.5, 5.0)]


def _targets(path, rows, source):
    lines = ["# uxo-targets v1", f"# source: {source}", "id,x,y,depth,moment,size_class"]
    lines += [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_daily_log_per_team_and_day(tmp_path, capsys):
    day = tmp_path / "2026-12-07"
    day.mkdir()
    write_survey(day / "a1.csv", OBJ, n_lanes=10, length=20.0,
                 metadata={"team": "T1", "date": "2026-12-07"})
    write_survey(day / "a2.csv", OBJ, n_lanes=6, length=30.0, skip_lanes=[3],
                 metadata={"team": "T1", "date": "2026-12-07"})
    write_survey(day / "b1.csv", OBJ, n_lanes=8, length=20.0,
                 metadata={"team": "T2", "date": "2026-12-07"})
    _targets(day / "a1-targets.csv", [(1, 5.5, 8.3, 0.8, 1.0, "projectile"),
                                      (2, 2.5, 14.0, 1.5, 5.0, "aircraft_bomb")], "a1.csv")
    _targets(day / "list-for-a2.csv", [(1, 1.0, 1.0, 0.1, 0.01, "scrap_or_bomblet"),
                                       (2, 2.0, 2.0, 0.2, 0.1, "mortar"),
                                       (3, 3.0, 3.0, 0.2, 0.02, "scrap_or_bomblet")], "a2.csv")
    out = tmp_path / "log.csv"
    assert main(["daily", str(day), "-o", str(out)]) == 0
    rows = {r["team"]: r for r in csv.DictReader(out.open())}
    t1, t2 = rows["T1"], rows["T2"]
    assert t1["date"] == t2["date"] == "2026-12-07"
    assert t1["surveys"] == "2" and t1["files"] == "a1.csv;a2.csv"
    # lanes x length x 1 m spacing: 10 x 20 + 5 x 30 (one lane of a2 not walked)
    assert float(t1["area_m2"]) == pytest.approx(200.0 + 150.0, abs=0.5)
    assert t1["signals"] == "5"
    assert (t1["scrap_or_bomblet"], t1["mortar"], t1["projectile"], t1["aircraft_bomb"]) == (
        "2", "1", "1", "1")
    # b1 has no target list: processed, its two objects found
    assert float(t2["area_m2"]) == pytest.approx(8 * 20.0, abs=0.5)
    assert t2["signals"] == "2"
    assert int(t2["projectile"]) + int(t2["aircraft_bomb"]) == 2
    assert "T1: 2 surveys, 350 m², 5 signals" in capsys.readouterr().out


def test_daily_on_a_folder_without_surveys_fails(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("nothing here\n", encoding="utf-8")
    assert main(["daily", str(tmp_path), "-o", str(tmp_path / "log.csv")]) == 2
    err = capsys.readouterr().err
    assert "no survey file found" in err
    assert not (tmp_path / "log.csv").exists()


def test_daily_reads_a_recording_its_team_and_its_day_from_the_time_stamps(tmp_path):
    day = tmp_path / "day"
    day.mkdir()
    record_two_detectors(day / "rec.h5", {"team": "T3"})
    out = tmp_path / "log.csv"
    assert main(["daily", str(day), "-o", str(out), "--stream", "grad0"]) == 0
    (row,) = list(csv.DictReader(out.open()))
    assert (row["date"], row["team"], row["files"]) == ("2026-12-07", "T3", "rec.h5")
    assert float(row["area_m2"]) == pytest.approx(12 * 20.0, abs=0.5)
    assert row["signals"] == "1" and row["projectile"] == "1"  # the 1 A m² object, processed
