"""``uxo report``: the HTML opened in real headless Chromium (screenshot not blank, text holds
every target's depth), density figures against the target list, coverage, detector separation
warnings, recording integrity, PDF output."""

from __future__ import annotations

import csv
import html as htmllib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from maps_helpers import pole_source, record_two_detectors, write_survey
from PIL import Image

from acquisition.cli import main
from acquisition.maps.proximity import Track, close_approaches

CRS = {"crs": "EPSG:32648", "grid_origin_e": 700000.0, "grid_origin_n": 1850000.0,
       "site": "Cam Lo B3", "date": "2026-12-07", "team": "Team 2",
       "operator": "Nguyen Van A", "instrument": "FEREX 4.032",
       "soil_noise_nT": 0.35, "soil_threshold_nT": 1.8, "soil_detect_k": 5.0}
OBJECTS = [pole_source(5.5, 8.3, 0.8, 1.0), pole_source(2.5, 3.0, 2.0, 6.0),
           pole_source(9.5, 15.0, 0.25, 0.06), pole_source(3.5, 16.0, 0.2, 0.05)]
#: docs/field.md density table, land: upper limits of classes 1-4 per depth band.
LIMITS = {"0-0.3 m": (95, 190, 285, 380), "0.3-3 m": (4, 8, 12, 16), "3-5 m": (1, 2, 3, 4)}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.fail("Debian's chromium is required (.ci/run installs it)")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    s = write_survey(d / "site.csv", OBJECTS, metadata=CRS, skip_lanes=[7], length=20.0)
    assert main(["process", str(s), "-o", str(d / "t.csv")]) == 0
    assert main(["report", str(s), "--targets", str(d / "t.csv"), "-o",
                 str(d / "r.html")]) == 0
    return d


def _targets(path: Path) -> tuple[list[dict[str, str]], dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    comments = dict(ln[2:].split(": ", 1) for ln in lines if ln.startswith("# ") and ": " in ln)
    rows = list(csv.DictReader(ln for ln in lines if not ln.startswith("#")))
    return rows, comments


def test_report_in_headless_chromium(report):
    html_path = report / "r.html"
    text = html_path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:|//)""", text)  # opens offline
    profile = report / "profile"
    shot = report / "shot.png"
    base = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    subprocess.run([*base, "--window-size=1200,3000", f"--screenshot={shot}",
                    html_path.as_uri()], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*base, "--dump-dom", html_path.as_uri()], check=True,
                         capture_output=True, timeout=120, text=True).stdout
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # not blank: dark text and the map's colours, not one flat page
    assert (img.sum(axis=2) < 200).mean() > 0.002
    assert len({tuple(p) for p in img[::7, ::7].reshape(-1, 3)}) > 50
    # the inline map decoded: the browser laid it out at its size
    assert "data:image/png;base64," in dom
    page = htmllib.unescape(re.sub(r"<[^>]+>", " ", dom))
    rows, _ = _targets(report / "t.csv")
    assert len(rows) >= 3
    for r in rows:
        assert f"{float(r['depth']):.2f} ± {float(r['sigma_depth']):.2f} m" in page
    for word in ("Cam Lo B3", "Team 2", "Nguyen Van A", "FEREX 4.032", "2026-12-07"):
        assert word in page


def test_density_matches_the_target_list(report):
    rows, comments = _targets(report / "t.csv")
    ha = float(comments["area_m2"]) / 1e4
    depths = [float(r["depth"]) for r in rows]
    text = report.joinpath("r.html").read_text(encoding="utf-8")
    table = text[text.index("<table class=\"density\">"):]
    table = table[:table.index("</table>")]
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", tr) for tr in table.split("<tr>")[2:]]
    bands = {c[0]: c[1:] for c in cells}
    for band, lo, hi in (("0-0.3 m", 0.0, 0.3), ("0.3-3 m", 0.3, 3.0), ("3-5 m", 3.0, 99.0)):
        n = sum(1 for d in depths if lo <= d < hi)
        per_ha = n / ha
        cls = next((str(k + 1) for k, lim in enumerate(LIMITS[band]) if per_ha <= lim),
                   "special")
        assert bands[band] == [str(n), f"{per_ha:.1f}", cls]


def test_dig_list_is_sorted_for_safety(report):
    text = report.joinpath("r.html").read_text(encoding="utf-8")
    table = text[text.index('<table class="dig">'):]
    table = table[:table.index("</table>")]
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", tr) for tr in table.split("<tr>")[2:]]
    order = ["aircraft_bomb", "projectile", "mortar", "scrap_or_bomblet"]
    keys = [(order.index(c[2]), -float(htmllib.unescape(c[3]).split()[0])) for c in cells]
    assert keys == sorted(keys)
    assert cells[0][2] == "aircraft_bomb"  # the 6 A m² object at 2 m is dug first


def test_coverage_lists_the_missed_lane_with_coordinates(report):
    text = htmllib.unescape(report.joinpath("r.html").read_text(encoding="utf-8"))
    assert "Lanes not walked (local x of the lane line): 7.5" in text
    assert "12 / 11" in text  # planned / walked
    # the gap: x 7.0..8.0 over the lane's 20 m, centre at E 700007.50 N 1850010.00
    assert re.search(r"<td class=\"n\">7\.0</td><td class=\"n\">0\.0</td><td class=\"n\">"
                     r"8\.0</td><td class=\"n\">20\.0</td><td class=\"n\">20\.0</td>"
                     r"<td class=\"n\">700007\.50</td><td class=\"n\">1850010\.00</td>", text)
    assert "91.7 % of 240 m²" in text
    assert "soil_noise" not in text and "0.35" in text  # the soil calibration shown


def test_pdf_report(report):
    out = report / "r.pdf"
    assert main(["report", str(report / "site.csv"), "--targets", str(report / "t.csv"),
                 "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data[:5] == b"%PDF-" and data.count(b"/Type /Page\n") + data.count(
        b"/Type /Page ") + data.count(b"/Type/Page") >= 2


def test_report_refuses_targets_of_another_site(report, tmp_path, capsys):
    far = tmp_path / "far.csv"
    far.write_text("id,x,y,depth\n1,500.0,500.0,0.5\n", encoding="utf-8")
    out = tmp_path / "r.html"
    assert main(["report", str(report / "site.csv"), "--targets", str(far), "-o",
                 str(out)]) == 2
    assert "outside the survey" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------------- detectors
def _track(name: str, x0: float, x1: float, y: float, t0: float = 0.0) -> Track:
    t = np.arange(0.0, 100.0, 0.1) + t0
    return Track(name, t, np.linspace(x0, x1, t.size), np.full(t.size, y))


def test_two_detectors_closer_than_7_m_are_warned_once_per_approach():
    a = _track("grad0", 0.0, 100.0, 0.0)
    b = _track("grad1", 100.0, 0.0, 5.0)  # walk towards each other 5 m apart across
    res = close_approaches([a, b])
    assert len(res) == 1
    w = res[0]
    assert w.min_distance_m == pytest.approx(5.0, abs=0.1)
    # closer than 7 m while |dx| < sqrt(49 - 25) = 4.9 m: 9.8 m of closing at 2 m/s
    assert w.t_end - w.t_start == pytest.approx(4.9, abs=1.1)
    assert w.x == pytest.approx(50.0, abs=1.0)


def test_detectors_apart_or_at_other_times_give_no_warning():
    assert close_approaches([_track("a", 0, 100, 0.0), _track("b", 0, 100, 8.0)]) == []
    # the same path, but one after the other
    assert close_approaches([_track("a", 0, 100, 0.0), _track("b", 0, 100, 0.0, 200.0)]) == []


def test_report_warns_on_a_detector_column(tmp_path):
    from acquisition.maps.inputs import load_survey
    from acquisition.maps.proximity import tracks_of_column

    s = write_survey(tmp_path / "two.csv", [pole_source(5.5, 8.3, 0.8, 1.0)], metadata=CRS)
    text = s.read_text(encoding="utf-8").splitlines()
    head = text.index("t,x,y,lane,value")
    rows = [ln.split(",") for ln in text[head + 1:]]
    half = len(rows) // 2
    # two detectors at the same times: the second half re-timed onto the first
    out = [*text[:head], "t,x,y,lane,value,detector"]
    for k, r in enumerate(rows):
        t = float(r[0]) - (half * 0.1 if k >= half else 0.0)
        out.append(",".join([f"{t:.2f}", *r[1:], "1" if k >= half else "0"]))
    s.write_text("\n".join(out) + "\n", encoding="utf-8")
    sv = load_survey(str(s))
    tracks = tracks_of_column(sv.t, sv.x, sv.y, sv.extra["detector"])
    assert [t.name for t in tracks] == ["detector 0", "detector 1"]
    # lanes 0-5 beside lanes 6-11 at the same times: 6 m apart -> warnings
    warned = close_approaches(tracks)
    assert warned and min(w.min_distance_m for w in warned) < 7.0
    out = tmp_path / "two.html"
    assert main(["report", str(s), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "Detectors came closer than 7 m" in text
    assert text.count("detector 0 / detector 1") == len(warned)


# ---------------------------------------------------------------------- recordings
def test_report_of_a_recording_integrity_and_detector_separation(tmp_path):
    import h5py

    rec = tmp_path / "rec.h5"
    record_two_detectors(rec, {k: str(v) for k, v in CRS.items()})
    out = tmp_path / "r.html"
    assert main(["report", str(rec), "--stream", "grad0", "-o", str(out)]) == 0
    text = htmllib.unescape(out.read_text(encoding="utf-8"))
    assert re.search(r"<p class='ok'>ok: 3 chains, \d+ links verified, nothing changed", text)
    assert "Detectors came closer than 7 m" in text
    assert "grad0 / grad1" in text and "<td class=\"n\">5.0</td>" in text
    # one reading changed after the fact: the report says so
    with h5py.File(rec, "r+") as f:
        f["streams"][sorted(f["streams"])[0]]["data"][10, 0] += 1.0
    assert main(["report", str(rec), "--stream", "grad0", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "<p class='bad'>changed:" in text
