"""The ablation's rule switches (`bench/ablation.py` ``RULES``) switch what they name.

A fit rule is switched off by its `FitConfig` switch (or a `FitConfig` value
that keeps it from firing); a rule outside the fit by patching a name of the
production code. A renamed switch or a moved step would make its row measure
the production code twice. Here every switch must be a `FitConfig` switch
that the rule's config turns off and nothing else, every value a `FitConfig`
field the rule's config sets (away from the default) and nothing else,
and every patch must find its target, change it while the rule is off and
restore it after. The scores themselves are measured, not tested
(bench/README.md).
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from ablation import RULES, _patched, rule_config, table

from acquisition.dsp.fitconfig import SWITCHES
from acquisition.dsp.pipeline import LaneConfig


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_has_one_way_off(rule: str) -> None:
    _what, switch, patches = RULES[rule]
    assert (switch is None) != (not patches)


@pytest.mark.parametrize("rule", [r for r, (_w, s, _p) in RULES.items() if isinstance(s, str)])
def test_a_fit_rule_turns_off_its_switch_and_nothing_else(rule: str) -> None:
    switch = RULES[rule][1]
    assert switch in SWITCHES
    base = LaneConfig()
    off = rule_config(base, rule)
    assert getattr(base.fit, switch) is True and getattr(off.fit, switch) is False
    changed = [f.name for f in fields(off.fit)
               if getattr(off.fit, f.name) != getattr(base.fit, f.name)]
    assert changed == [switch]
    assert rule_config(base, "base") is base


@pytest.mark.parametrize("rule", [r for r, (_w, s, _p) in RULES.items()
                                  if isinstance(s, tuple)])
def test_a_fit_value_rule_sets_its_field_and_nothing_else(rule: str) -> None:
    name, value = RULES[rule][1]  # type: ignore[misc]
    base = LaneConfig()
    off = rule_config(base, rule)
    assert name in {f.name for f in fields(base.fit)} and name not in SWITCHES
    assert getattr(base.fit, name) != value and getattr(off.fit, name) == value
    changed = [f.name for f in fields(off.fit)
               if getattr(off.fit, f.name) != getattr(base.fit, f.name)]
    assert changed == [name]


@pytest.mark.parametrize("rule", [r for r, (_w, _s, p) in RULES.items() if p])
def test_each_rule_patch_finds_its_target_and_is_undone(rule: str) -> None:
    patches = RULES[rule][2]
    before = [getattr(obj, name) for obj, name, _v in patches]
    with _patched(rule):
        for (obj, name, value), old in zip(patches, before, strict=True):
            now = getattr(obj, name)
            assert now is value
            assert now is not old
    assert [getattr(obj, name) for obj, name, _v in patches] == before


def test_base_patches_nothing() -> None:
    from acquisition.dsp import droprules
    before = droprules.BOMB_MOMENT
    with _patched("base"):
        assert before == droprules.BOMB_MOMENT


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


def test_a_rule_is_compared_with_base_on_its_own_surveys() -> None:
    # base has a second survey the stopped run never reached with the rule off
    other = dict(_rec("base", 2, 5, 0), seed=2)
    out = table([_rec("base", 9, 0, 1), other, _rec("split_deep", 9, 0, 1)])
    row = next(line for line in out.splitlines() if line.startswith("split_deep"))
    assert " 1 " in row and "0.900 (+0.000)" in row and "0 (+0)" in row
