"""The docs are the project's own: every doc is linked, cited docs exist, formats are complete.

Reads the repository's files as they are: README's documentation list against
docs/*.md, every doc cited as ``docs/<name>.md`` in source or docs against the files
there, no citation of a document outside the repository, and docs/formats.md
against the names the code reads and writes (metadata keys, target-list
columns, size classes), so a key added to the code without its line in the
format doc fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from acquisition.borehole.report import BOREHOLE_COLUMNS
from acquisition.coords import CRS_KEY, ORIGIN_E_KEY, ORIGIN_N_KEY, ROTATION_KEY
from acquisition.dsp.calibration import SoilCalibration
from acquisition.events import SIZE_CLASSES
from acquisition.processing import SETTINGS
from acquisition.survey import UNIT_KEY
from acquisition.targets_io import CSV_COLUMNS, PLACE_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".venv", ".git", "node_modules", "build", "dist"}


def _files(*exts: str) -> list[Path]:
    return [p for ext in exts for p in ROOT.rglob(f"*.{ext}")
            if not SKIP.intersection(p.relative_to(ROOT).parts)]


def test_readme_links_every_doc() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{doc.name})" in readme, f"README.md does not link docs/{doc.name}"


def test_cited_docs_exist_and_nothing_outside_is_cited() -> None:
    outside = re.compile(r"\b(DOMAIN|FORMATS|DESIGN|LESSONS)\.md\b")
    cited = re.compile(r"\bdocs/([A-Za-z0-9_-]+\.md)\b")
    for path in _files("py", "md"):
        text = path.read_text(encoding="utf-8", errors="replace")
        m = outside.search(text)
        assert m is None, f"{path.relative_to(ROOT)} cites {m.group(0)}, not in the repository"
        for name in cited.findall(text):
            assert (ROOT / "docs" / name).is_file(), (
                f"{path.relative_to(ROOT)} cites docs/{name}, which does not exist")


def test_formats_doc_names_every_key_and_column() -> None:
    doc = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    keys = {k for k, _ in SETTINGS.values() if k is not None}
    keys |= {CRS_KEY, ORIGIN_E_KEY, ORIGIN_N_KEY, ROTATION_KEY, UNIT_KEY}
    keys |= set(SoilCalibration(0, 0, 0, 0, 5, 0, 0).to_metadata())
    columns = {*CSV_COLUMNS, *PLACE_COLUMNS, *BOREHOLE_COLUMNS}
    classes = {name for name, _, _ in SIZE_CLASSES}
    missing = sorted(n for n in keys | columns | classes if f"`{n}`" not in doc)
    assert not missing, f"docs/formats.md does not name {missing}"
    for line in ("# uxo-survey v1", "# uxo-borehole v1", "# uxo-targets v1"):
        assert line in doc
