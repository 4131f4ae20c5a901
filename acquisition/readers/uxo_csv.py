"""Reader for the project's own survey CSV (``# uxo-survey v1``, docs/formats.md).

The parsing itself lives in `acquisition.survey_csv`; this wraps it as a
plug-in. It claims a file whose header row holds ``x``, ``y`` and ``value``
(after optional ``#`` metadata lines), with or without the format line.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import ClassVar

from acquisition.readers import RawSurvey
from acquisition.survey_csv import REQUIRED, SurveyCSVError, parse_survey_csv

UTF8_BOM = b"\xef\xbb\xbf"


def _header_row(head: bytes) -> list[str] | None:
    text = head.removeprefix(UTF8_BOM).decode("utf-8", errors="replace")
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        try:
            return [h.strip().lower() for h in next(csv.reader([s]))]
        except (csv.Error, StopIteration):
            return None
    return None


class UxoCSVReader:
    """``# uxo-survey v1``: t, x, y, lane, value columns in any order."""

    name: ClassVar[str] = "uxo-csv"
    description: ClassVar[str] = "uxo-acquisition survey CSV (# uxo-survey v1)"
    priority: ClassVar[int] = 10

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        if head.removeprefix(UTF8_BOM).lstrip().lower().startswith(b"# uxo-survey"):
            return True
        header = _header_row(head)
        return header is not None and all(c in header for c in REQUIRED)

    def read(self, path: Path, *, columns: dict[str, str] | None = None,
             max_bad_share: float = 0.1, stream: str | None = None) -> RawSurvey:
        from acquisition.survey import SurveyReadError

        if columns:
            raise SurveyReadError(path, None, "a column mapping is for other CSV files; "
                                  "this one is already a uxo survey CSV")
        if stream:
            raise SurveyReadError(path, None, "a survey CSV holds one stream")
        text = path.read_bytes().removeprefix(UTF8_BOM).decode("utf-8", errors="replace")
        try:
            d = parse_survey_csv(text, max_bad_share=max_bad_share)
        except SurveyCSVError as exc:
            raise SurveyReadError(path, None, str(exc)) from None
        return RawSurvey(x=d.x, y=d.y, value=d.value, t=d.t, lane=d.lane,
                         metadata=dict(d.metadata), extra=dict(d.extra),
                         bad_rows=list(d.bad_rows), line_numbers=d.line_numbers,
                         rows_seen=d.n + len(d.bad_rows))
