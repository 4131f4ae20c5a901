"""``uxo convert``: any supported survey file to the project's survey CSV; ``uxo formats``.

    uxo convert FILE -o survey.csv [--from FORMAT] [--columns MAP] [--crs EPSG:N]
                [--grid-origin E,N] [--grid-rotation DEG] [--value-unit U]

The file is read through `acquisition.survey.read_survey` (the same call as
the library), then written as ``# uxo-survey v1``: local x, y in metres, values
in nT (``value_unit: nT``), and the frame's metadata keys (``crs``,
``grid_origin_e``, ``grid_origin_n``, ``grid_rotation_deg``) so that reading
the output gives the same survey. Every readable row is kept; rejected rows are
counted, and the first ones listed with their line numbers. What was assumed
(unit, CRS, sensor geometry) is printed.

The output is written to a temporary file beside it and renamed on success:
a failed conversion leaves no file that looks valid.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from acquisition.survey_cli import (
    add_survey_input_arguments,
    bad_row_lines,
    survey_notes,
    survey_read_kwargs,
)
from acquisition.survey_csv import FORMAT_LINE

BASE_COLUMNS = ("t", "x", "y", "lane", "value")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_COL_RE = re.compile(r"[^A-Za-z0-9_.\-]+")


def register_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="convert a survey export (STN, Sensys, Geosoft, CSV...) to survey CSV",
        description="Read any supported survey file (`uxo formats`) and write the project's "
                    "survey CSV: local metres, values in nT, the coordinate frame in metadata.")
    p.add_argument("file", nargs="?", help="survey file to convert")
    p.add_argument("-o", "--output", metavar="CSV", help="survey CSV to write")
    p.add_argument("--list", action="store_true", help="list the supported formats and exit")
    p.add_argument("--stream", help="stream to read from a multi-stream source (a recording's "
                   "stream id; STN: gradient, sensor1, sensor2)")
    p.add_argument("--max-bad-share", type=float, default=0.1, metavar="F",
                   help="fail when more than this share of the data rows is damaged "
                        "(default 0.1; no-fix and dummy rows do not count)")
    add_survey_input_arguments(p)
    p.set_defaults(func=run_convert)


def register_formats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("formats", help="list the survey file formats that can be read",
                       description="Survey-file readers (entry-point group uxo.readers), in "
                                   "the order they are tried when sniffing a file.")
    p.set_defaults(func=lambda args: print_formats(sys.stdout))


def print_formats(out: TextIO) -> int:
    from acquisition.readers import readers

    known = readers()
    width = max((len(n) for n in known), default=0)
    for name in sorted(known, key=lambda k: (getattr(known[k], "priority", 50), k)):
        out.write(f"{name:<{width}}  {getattr(known[name], 'description', '')}\n")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from acquisition.survey import SurveyReadError, read_survey

    if args.list:
        return print_formats(sys.stdout)
    if not args.file or not args.output:
        print("uxo convert: give FILE and -o OUTPUT (or --list)", file=sys.stderr)
        return 2
    try:
        kwargs = survey_read_kwargs(args)
    except ValueError as exc:
        print(f"uxo convert: {exc}", file=sys.stderr)
        return 2
    try:
        survey = read_survey(args.file, stream=args.stream, max_bad_share=args.max_bad_share,
                             **kwargs)
    except SurveyReadError as exc:
        print(f"uxo convert: {exc}", file=sys.stderr)
        return 2
    for line in bad_row_lines(survey):
        print(line, file=sys.stderr)
    try:
        write_survey_csv_atomic(args.output, survey)
    except OSError as exc:
        print(f"uxo convert: {args.output}: cannot write: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    for note in survey_notes(survey, kwargs["metadata"]):
        print(f"note: {note}")
    where = f", {survey.frame.crs}" if survey.frame.georeferenced else ", local grid"
    print(f"{survey.source}: {survey.format}, {survey.n} rows written to {args.output}"
          f"{where}; {len(survey.bad_rows)} of {survey.rows_seen} rows rejected")
    return 0


# -- writing ----------------------------------------------------------------------
def output_metadata(survey: Any) -> dict[str, str]:
    """The survey's metadata as written: values now in nT, provenance added, keys safe."""
    md: dict[str, str] = {}
    # a recording states its sensor geometry in its stream descriptor, not in metadata
    items = [*((k, v) for k, v in survey.geometry.items()
               if k not in survey.metadata and isinstance(v, str | int | float)),
             *survey.metadata.items()]
    for k, v in items:
        k = str(k).strip()
        if not _KEY_RE.match(k):
            continue  # a key that would not read back as '# key: value'
        md[k] = " ".join(str(v).split())
    md["value_unit"] = "nT"
    md.setdefault("source_file", Path(survey.source).name)
    md.setdefault("source_format", survey.format)
    if survey.value_unit != "nT":
        md["source_value_unit"] = survey.value_unit
    return md


def write_survey_csv(out: TextIO, survey: Any) -> None:
    """Write ``survey`` as ``# uxo-survey v1`` text (t, x, y, lane, value, then extras)."""
    out.write(FORMAT_LINE + "\n")
    for k, v in output_metadata(survey).items():
        out.write(f"# {k}: {v}\n")
    n = survey.n
    # (name, values, missing): a missing time is an empty field (the reader's rule
    # for t); a missing extra is "nan", which keeps the extra column numeric.
    cols: list[tuple[str, np.ndarray, str | None]] = []
    if survey.t is not None:
        cols.append(("t", np.asarray(survey.t, dtype=np.float64), ""))
    cols += [("x", survey.x, ""), ("y", survey.y, "")]
    if survey.lane is not None:
        cols.append(("lane", np.asarray(survey.lane), None))
    cols.append(("value", survey.value, ""))
    used = set(BASE_COLUMNS)
    for name, arr in survey.extra.items():
        col = _COL_RE.sub("_", str(name)).strip("_").lower()
        a = np.asarray(arr)
        if not col or col in used or a.shape != (n,) or a.dtype.kind not in "fiu":
            continue
        used.add(col)
        cols.append((col, a.astype(np.float64), "nan"))
    out.write(",".join(c[0] for c in cols) + "\n")
    # column by column, then joined row-wise: several times faster than a call per cell
    texts = [[str(v) for v in a.astype(np.int64).tolist()] if m is None
             else [repr(v) if math.isfinite(v) else m for v in a.tolist()]
             for _, a, m in cols]
    for start in range(0, n, 50_000):
        rows = zip(*(t[start:start + 50_000] for t in texts), strict=True)
        out.write("".join(",".join(r) + "\n" for r in rows))


def write_survey_csv_atomic(path: str | Path, survey: Any) -> Path:
    """`write_survey_csv` to ``path`` through a temporary file renamed on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            write_survey_csv(fh, survey)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
