"""Numerical failures the fits take as "no fit" are counted in the pipeline stats and logged."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from dsp_synth import induced, survey

from acquisition import numfail
from acquisition.dsp.batch import SurveyResult, process_survey
from acquisition.geomag import QUANG_TRI


@pytest.fixture(scope="module")
def lanes():
    return survey([induced(3.0, 8.0, 0.8, 2.0)], noise=0.3, seed=1, n_lanes=6, length=16)


def test_a_clean_survey_has_no_fit_failures(lanes) -> None:
    x, y, v, _lane, geo = lanes
    res = process_survey(x, y, v, geometry=geo, field=QUANG_TRI)
    assert len(res.targets) == 1 and res.fit_failures == 0
    assert "numerical fit failures" not in res.summary()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_failed_solves_are_counted_logged_and_summarised(lanes, caplog) -> None:
    # Readings of 1e200 nT (a live block; files are bounded by process_survey)
    # overflow the least-squares residuals: scipy refuses the start point
    # (ValueError) and the fit takes it as "no fit".
    x, y, v, _lane, geo = lanes
    before = numfail.totals["fit.fit_sources"]
    with caplog.at_level(logging.DEBUG, logger="uxo.numerics"):
        pipe = _stream(x, y, v * 1e200, geo)
    n = pipe.stats.fit_failures
    assert n >= 1
    assert numfail.totals["fit.fit_sources"] - before == n
    debug = [r for r in caplog.records if r.name == "uxo.numerics"]
    assert len(debug) == n and "fit.fit_sources" in debug[0].getMessage()
    warn = [r for r in caplog.records if r.name == "acquisition.dsp.pipeline"
            and r.levelno == logging.WARNING]
    assert warn and f"({n} in all)" in warn[-1].getMessage()
    res = SurveyResult([], [], 1.0, 5.0, 1, 10.0, 10, fit_failures=n)
    assert f"numerical fit failures: {n}" in res.summary()


def test_a_file_with_readings_beyond_bounds_rejects_them(lanes) -> None:
    x, y, v, _lane, geo = lanes
    v = v.copy()
    v[100] = 1e300
    res = process_survey(x, y, v, geometry=geo, field=QUANG_TRI)
    assert res.fit_failures == 0 and len(res.targets) == 1
    assert res.rejected_samples == 1
    assert "1 reading(s) beyond physical bounds rejected" in res.notes[0]
    assert "data row 101" in res.notes[0]


def _stream(x, y, v, geo):
    from acquisition.dsp.batch import make_descriptor
    from acquisition.dsp.pipeline import LanePipeline
    from acquisition.types import SampleBlock

    pipe = LanePipeline(make_descriptor(geo), QUANG_TRI)
    pos = np.column_stack([x, y])
    with np.errstate(all="ignore"):
        for i in range(0, x.size, 100):
            j = min(x.size, i + 100)
            pipe.process(SampleBlock("survey", i // 100, i, i * 10**8, 10.0,
                                     v[i:j][:, None], pos[i:j]))
        pipe.finish()
    return pipe


def test_counts_are_per_thread() -> None:
    seen = []

    def other() -> None:
        seen.append(numfail.thread_count())
        numfail.swallowed("test.other", ValueError("x"))
        seen.append(numfail.thread_count())

    here = numfail.thread_count()
    th = threading.Thread(target=other)
    th.start()
    th.join()
    assert seen == [0, 1] and numfail.thread_count() == here
    assert numfail.totals["test.other"] >= 1
