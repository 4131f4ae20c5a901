"""Numerical failures the fits take as "no fit" are counted in the pipeline stats and logged."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from dsp_synth import induced, survey

from acquisition import numfail
from acquisition.dsp.batch import process_survey
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
    # Readings of 1e200 nT overflow the least-squares residuals: scipy refuses
    # the start point (ValueError) and the fit takes it as "no fit".
    x, y, v, _lane, geo = lanes
    before = numfail.totals["fit.fit_sources"]
    with caplog.at_level(logging.DEBUG, logger="uxo.numerics"):
        res = process_survey(x, y, v * 1e200, geometry=geo, field=QUANG_TRI)
    n = res.fit_failures
    assert n >= 1
    assert numfail.totals["fit.fit_sources"] - before == n
    assert f"numerical fit failures: {n}" in res.summary()
    debug = [r for r in caplog.records if r.name == "uxo.numerics"]
    assert len(debug) == n and "fit.fit_sources" in debug[0].getMessage()
    warn = [r for r in caplog.records if r.name == "acquisition.dsp.pipeline"
            and r.levelno == logging.WARNING]
    assert warn and f"{n} numerical fit failure" in warn[-1].getMessage()


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


def test_streaming_pipeline_counts_the_same(lanes) -> None:
    from acquisition.dsp.batch import make_descriptor
    from acquisition.dsp.pipeline import LanePipeline
    from acquisition.types import SampleBlock

    x, y, v, _lane, geo = lanes
    with np.errstate(all="ignore"):
        pipe = LanePipeline(make_descriptor(geo), QUANG_TRI)
        pos = np.column_stack([x, y])
        for i in range(0, x.size, 100):
            j = min(x.size, i + 100)
            pipe.process(SampleBlock("survey", i // 100, i, i * 10**8, 10.0,
                                     (v[i:j] * 1e200)[:, None], pos[i:j]))
        pipe.finish()
    batch = process_survey(x, y, v * 1e200, geometry=geo, field=QUANG_TRI)
    assert pipe.stats.fit_failures == batch.fit_failures >= 1
