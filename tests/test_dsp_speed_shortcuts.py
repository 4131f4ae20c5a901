"""Exact shortcuts added for the 10 M samples/s target (issue #4, "Speed")
equal their plain twins.

- The live detector's whole-block commit (`LiveDetector._all_under`: only the
  last level of a quiet block is computed) gives the same hits, level and own
  noise after every block as the sample-run path, in any chunking.
- The segmenter's no-step-back shortcut gives the same lanes as the reference
  segmenter, on exact, jittered, standing-still and walked-back tracks.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dsp_speed_paths import RefSegmenter, _live_run, chunks, walk_track

from acquisition.dsp.detect import LiveDetector
from acquisition.dsp.segment import LaneSegmenter

# --------------------------------------------------------------- live detector


def busy_lane(rng: np.random.Generator, n: int, signals: int, tail: float, *,
              offset_sd: float, amp_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """A lane at 10 cm: white noise, a heavy tail of weight ``tail``, a random
    offset and ``signals`` bell-shaped anomalies of 2 to ``amp_hi`` nT, either
    sign (values rounded to 0.01 nT, so that ties occur)."""
    y = np.arange(n) * 0.1
    v = rng.normal(0, 0.5, n) + rng.standard_t(3, n) * 0.3 * tail + rng.normal(0, offset_sd)
    for c in rng.uniform(0, y[-1], signals):
        amp = rng.choice([-1, 1]) * rng.uniform(2.0, amp_hi)
        v += amp * np.exp(-0.5 * ((y - c) / rng.uniform(0.1, 1.5)) ** 2)
    return y, np.round(v, 2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1500, 6000),
       sizes=st.lists(st.integers(300, 2500), min_size=1, max_size=4),
       noise=st.sampled_from([None, 0.5, 0.3]), signals=st.integers(0, 4),
       min_thr=st.sampled_from([0.0, 2.5]), lanes=st.integers(1, 2),
       tail=st.floats(0.0, 1.0))
def test_live_whole_block_commit_equals_sample_runs(seed: int, n: int, sizes: list[int],
                                                    noise: float | None, signals: int,
                                                    min_thr: float, lanes: int,
                                                    tail: float) -> None:
    """Long lanes in big blocks (the whole-block commit needs full windows), with
    signals just around the threshold and heavy-tailed noise (the counting test
    near its limit); state compared after every block, not only at the end."""
    y, v = busy_lane(np.random.default_rng(seed), n, signals, tail, offset_sd=2.0, amp_hi=5.0)
    fast = _live_run(v, y, sizes, True, noise, 3, min_thr, lanes)
    plain = _live_run(v, y, sizes, False, noise, 3, min_thr, lanes)
    assert fast == plain


def test_live_whole_block_commit_is_taken_and_exact() -> None:
    """A quiet lane in blocks of 1000: the shortcut is taken (a partition per
    block, not one per update) and the level is the plain path's."""
    rng = np.random.default_rng(8)
    v = rng.normal(0, 0.5, 8000)
    y = np.arange(8000) * 0.1
    taken = []

    class Spy(LiveDetector):
        def _all_under(self, *a: object) -> bool:
            ok = super()._all_under(*a)  # type: ignore[arg-type]
            taken.append(ok)
            return ok

    fast, plain = Spy(k=6.0), LiveDetector(k=6.0, quiet_path=False)
    for det in (fast, plain):
        det.noise = 0.5
        det.start_lane(0.0)
    for i in range(0, 8000, 1000):
        assert fast.feed(v[i:i + 1000], y[i:i + 1000]) == plain.feed(v[i:i + 1000], y[i:i + 1000])
        assert fast.level == plain.level
    assert len(taken) >= 6 and all(taken)
    assert fast.level == float(np.median(v[8000 - 600:]))  # last update: at 8000


# ------------------------------------------------------------------- segmenter


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 1000), lanes=st.integers(1, 4), length=st.floats(2.0, 30.0),
       jitter=st.sampled_from([0.0, 0.0, 0.005, 0.03]), stand=st.integers(0, 20),
       back=st.booleans(), sizes=st.lists(st.integers(1, 600), min_size=1, max_size=5))
def test_segmenter_no_step_back_shortcut_equals_reference(seed: int, lanes: int, length: float,
                                                          jitter: float, stand: int, back: bool,
                                                          sizes: list[int]) -> None:
    x, y = walk_track(seed, lanes, length, jitter=jitter, stand=stand, back=back)
    ref = RefSegmenter(1.0).assign(x, y)
    seg = LaneSegmenter(1.0)
    got = np.empty(x.size, dtype=np.int64)
    for s in chunks(x.size, sizes):
        for a, b, ln in seg.runs(x[s], y[s]):
            got[s.start + a:s.start + b] = ln
    assert np.array_equal(got, ref)
    # (standing still inside the walk-back shortens it below a lane's turn)
    if back and lanes >= 2 and length >= 10.0 and stand == 0:
        assert int(ref.max()) >= lanes  # the walk-back opened a lane of its own
