"""The ablation's rule switches (`bench/ablation.py` ``RULES``) switch what they name.

Each rule is switched off by patching a name of the production code; a
renamed or moved step would make its row measure the production code
twice. Here every patch must find its target, change it while the rule is
off and restore it after, and a pass-through stage must hand back what it
was given. The scores themselves are measured, not tested (bench/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import inspect

from ablation import RULES, _first, _joint_refit_off, _patched, table

from acquisition.dsp import broadfit


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_patch_finds_its_target_and_is_undone(rule: str) -> None:
    _what, patches = RULES[rule]
    assert patches
    before = [getattr(obj, name) for obj, name, _v in patches]
    with _patched(rule):
        for (obj, name, value), old in zip(patches, before, strict=True):
            now = getattr(obj, name)
            assert now is value
            assert now is not old
    assert [getattr(obj, name) for obj, name, _v in patches] == before


def test_base_patches_nothing() -> None:
    _obj, name, _v = RULES["split_deep"][1][0]
    with _patched("base"):
        from acquisition.dsp import fit
        assert getattr(fit, name) is not _first


def test_pass_through_stages_return_their_input() -> None:
    srcs = [np.array([1.0, 2.0, 3.0])]
    assert _first(srcs, np.zeros(3), np.zeros(3), key=1) is srcs
    p, x, y, v = np.arange(3.0), np.zeros(4), np.zeros(4), np.ones(4)
    q, w = _joint_refit_off(p, x, y, v, None, None, 1.0, (0.7, 1.6, 0.35), None)
    assert q is p and w is v
    # The data are `_joint_refit`'s fourth argument, as the stand-in takes them.
    assert list(inspect.signature(broadfit._joint_refit).parameters)[:4] == ["p", "x", "y", "v"]


def _rec(rule: str, found: int, big: int, false: int) -> dict:
    return {"rule": rule, "seed": 1, "eligible": 10, "found": found, "eligible_bg": 10,
            "found_bg": found, "false": false, "area": 1000.0, "seconds": 1.0,
            "dh": [0.05] * found, "dz_rel": [0.0] * found, "depth_ok": [True] * found,
            "in_sz": [True] * found, "big_missed": [{}] * big}


def test_table_gives_each_rule_its_change_against_base() -> None:
    out = table([_rec("base", 9, 0, 1), _rec("split_deep", 7, 2, 3)])
    row = next(line for line in out.splitlines() if line.startswith("split_deep"))
    assert "0.700 (-0.200)" in row
    assert "2 (+2)" in row
    assert "3.000 (+2.000)" in row
    assert table([_rec("split_deep", 7, 2, 3)]) == "no base records"
