"""One survey, one threshold: signals under the final threshold are told apart.

The threshold is learnt as the survey goes; on magnetic ground without a
soil calibration it rises with the soil's clutter, so the first lanes pass
soil peaks the survey's own threshold would not. Surveys come from the
simulator (an uncalibrated lateritic survey: `bench/cases.py` ``REPLAY_WORLDS``,
seed 13, one of the earlier benchmark worlds used here as a fixed world).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_dsp_pipeline import blocks
from test_dsp_tails_clutter import bench_processed

from acquisition.cli import main as process_main
from acquisition.dsp.batch import make_descriptor
from acquisition.dsp.fit import BOMB_MOMENT
from acquisition.dsp.pipeline import LanePipeline
from acquisition.events import Target
from acquisition.survey_csv import write_survey_csv
from acquisition.targets_io import read_targets_csv
from simulator.scoring import match


@pytest.fixture(scope="module")
def laterite():
    return bench_processed("lateritic", 13)


def stream_to_the_end(sc, sim, flag: str):
    """The survey streamed in blocks of 1000: what was sent before `finish`
    and at it, the revisions flagged ``flag`` at the end, and the pipeline.
    Checks what every end-of-survey review owes: each revises a target sent
    earlier without the flag (same id, position, depth, revision + 1), none
    twice, and a second `finish` sends nothing."""
    geo = {"kind": sim.kind, "sensor_height_m": sc.sensor.height_m,
           "sensor_separation_m": sc.sensor.separation_m}
    pipe = LanePipeline(make_descriptor(geo, 10.0, "s"), sc.field)
    before: list = []
    for b in blocks(sim.x_rec, sim.y_rec, sim.values[:, 0], [1000]):
        before += pipe.process(b)
    end = pipe.finish()
    revised = [e for e in end if isinstance(e, Target) and flag in e.flags]
    # Sent earlier without the flag (some during `finish`, before the review).
    sent = {e.target_id: e for e in before + end
            if isinstance(e, Target) and flag not in e.flags}
    for r in revised:
        first = sent[r.target_id]
        assert r.revision == first.revision + 1
        assert (r.x, r.y, r.depth) == (first.x, first.y, first.depth)
    assert len({r.target_id for r in revised}) == len(revised)
    assert pipe.finish() == []
    return revised, pipe


def test_signals_under_the_final_threshold_are_listed_apart(laterite):
    sc, sim, res = laterite
    thr = res.threshold_nT
    assert len(res.under_threshold) >= 2
    assert all("under_threshold" in t.flags and abs(t.amplitude_nT) < thr
               for t in res.under_threshold)
    # (A target of the low-pass pass is judged against the low-passed threshold.)
    assert all((abs(t.amplitude_nT) >= thr or t.moment_abs >= BOMB_MOMENT
                or "lowpass" in t.flags)
               and "under_threshold" not in t.flags for t in res.targets)
    # None of them is a buried object (soil peaks from the first lanes) ...
    for t in res.under_threshold:
        assert min(math.hypot(o.x - t.x, o.y - t.y) for o in sim.truth) > 1.0
    # ... and every object 8 x over the measured background is still a target.
    truth = np.array([[o.x, o.y, o.depth] for o in sim.truth])
    rep = np.array([[t.x, t.y, t.depth] for t in res.targets]).reshape(-1, 3)
    found = {p.truth_index for p in match(truth, rep, gate_m=1.0).pairs}
    bg = max(sc.noise.white_nT, res.noise_nT)
    eligible = [i for i, o in enumerate(sim.truth) if o.peak_abs_nT >= 8.0 * bg]
    assert eligible and all(i in found for i in eligible)
    assert "under the final threshold" in res.summary()


def test_streaming_sends_them_as_revisions_at_the_end(laterite):
    sc, sim, res = laterite
    revised, pipe = stream_to_the_end(sc, sim, "under_threshold")
    assert len(revised) == pipe.stats.under_threshold >= 2
    # The same ones as in batch.
    assert (sorted((round(r.x, 6), round(r.y, 6)) for r in revised)
            == sorted((round(t.x, 6), round(t.y, 6)) for t in res.under_threshold))


def process_with_and_without_keep_weak(sc, sim, tmp_path, capsys):
    """`uxo process` on the survey as a CSV, plain and with --keep-weak: the
    plain run's printed summary and the rows of both target lists."""
    src = tmp_path / "survey.csv"
    write_survey_csv(src, sim.x_rec, sim.y_rec, sim.values[:, 0], t=sim.t_s,
                     metadata={"kind": sim.kind, "sensor_height_m": sc.sensor.height_m,
                               "sensor_separation_m": sc.sensor.separation_m})
    plain, every = tmp_path / "t.csv", tmp_path / "t_all.csv"
    assert process_main(["process", str(src), "-o", str(plain)]) == 0
    out = capsys.readouterr().out
    assert process_main(["process", str(src), "-o", str(every), "--keep-weak"]) == 0
    return out, read_targets_csv(plain), read_targets_csv(every)


def test_uxo_process_keep_weak_lists_them_flagged(laterite, tmp_path, capsys):
    sc, sim, _res = laterite
    out, rows, rows_all = process_with_and_without_keep_weak(sc, sim, tmp_path, capsys)
    n_weak = len(rows_all) - len(rows)
    assert n_weak >= 2
    assert f"and {n_weak} under the final threshold" in out
    flagged = [r for r in rows_all if "under_threshold" in r["flags"]]
    assert len(flagged) == n_weak
    assert not any("under_threshold" in r["flags"] for r in rows)
