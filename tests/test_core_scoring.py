"""Ground-truth matching is one-to-one and gated."""

from __future__ import annotations

import numpy as np

from simulator.scoring import match


def test_one_to_one_with_gate_and_duplicates():
    truth = np.array([[0, 0, 1.0], [5, 5, 2.0], [9, 9, 3.0]])
    reports = np.array([[0.1, 0, 1.1], [0.2, 0, 1.0], [5, 5.3, 1.5], [20, 20, 1.0]])
    m = match(truth, reports, gate_m=0.5)
    assert [(p.truth_index, p.report_index) for p in m.pairs] == [(0, 0), (1, 2)]
    assert np.allclose(m.horizontal_errors, [0.1, 0.3])
    assert np.allclose(m.depth_errors, [0.1, -0.5])
    assert m.missed == [2]
    assert m.false_picks == [1, 3]  # the duplicate near truth 0 is a false pick
    assert m.recall() == 2 / 3
    assert m.recall(eligible=[0, 1]) == 1.0


def test_empty_inputs():
    m = match(np.zeros((0, 3)), np.array([[1, 2, 3.0]]))
    assert m.pairs == [] and m.false_picks == [0] and m.missed == []
    assert match(np.array([[1, 2, 3.0]]), np.zeros((0, 3))).missed == [0]
