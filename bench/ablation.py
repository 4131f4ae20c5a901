"""Ablation of the lane fit's rules: the benchmark with one named rule switched off at a time.

Run: ``.venv/bin/python bench/ablation.py [--seeds N | --held-out N]
[--only SCENARIO ...] [--rules RULE ...] [--jsonl FILE]``;
``--summarise FILE ...`` prints the table of records written earlier.
``--list`` names the rules.

Each rule in `RULES` was written for what one benchmark seed showed (issue
22, item 2); here it is switched off: a fit stage or rule by its
`FitConfig` switch (or a `FitConfig` value that keeps it from firing), a
rule outside the fit by `unittest.mock.patch` (a
method replaced by a pass-through, or a constant set so that the rule never
fires), and the same simulated surveys are processed with and without it.
Each world is simulated once and processed once per rule
(`accuracy_lanes.score_run`), so every row sees the same data. The table
gives, per rule, the benchmark's figures without the rule and their change
against the production code (``base``): recall, big bodies missed, depth
within max(15 %, 0.10 m), horizontal median, false picks per 1000 m^2.
A rule pays if switching it off costs recall, big bodies or depth, or adds
false picks; one whose removal changes nothing or helps does not.

One table maps each rule name to its switch or patches.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from unittest import mock

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy_lanes import (
    HELD_OUT_SEEDS,
    SITES,
    TUNING_SEEDS,
    Tally,
    base_config,
    random_world,
    score_run,
)

from acquisition.dsp import droprules as droprules_module
from acquisition.dsp import pipeline as pipeline_module
from acquisition.dsp.pipeline import LaneConfig
from simulator.scenario import scenario_from_dict
from simulator.survey import simulate_survey


def _method_first(_self, fits, *_a, **_k):
    return fits


def _method_none(_self, *_a, **_k):
    return []


#: Rule name -> (what it does, the `FitConfig` switch that turns it off (or a
#: (field, value) that keeps it from firing) or None, patches (object,
#: attribute, replacement) for rules outside the fit). Ordered by what the
#: earlier comments named benchmark seeds for first.
RULES: dict[str, tuple[str, str | tuple[str, object] | None,
                       list[tuple[object, str, object]]]] = {
    "split_deep": ("two deep sources fitted as one are split (broadfit.split_deep)",
                   "split_deep", []),
    "drop_level_explained": ("sources a per-lane level explains are dropped "
                             "(broadfit.drop_level_explained)", "drop_level_explained", []),
    "add_isolated": ("an isolated residual signal in a broad window gets a source "
                     "(broadfit.add_isolated)", "add_isolated", []),
    "joint_refit": ("broad window: joint refit with lane offsets (broadfit.joint_refit)",
                    "joint_refit", []),
    "recentre_isolated": ("isolated sources refitted on their own samples "
                          "(broadfit.recentre_isolated)", "recentre_isolated", []),
    "replace_beside_lines": ("point sources beside a line fit replaced "
                             "(elongate.replace_beside_lines)", "replace_beside_lines", []),
    "bomb_moment_keep": ("a bomb-sized source is kept under the threshold "
                         "(droprules.drop_subthreshold, pipeline._review_threshold)", None,
                         [(droprules_module, "BOMB_MOMENT", math.inf),
                          (pipeline_module, "BOMB_MOMENT", math.inf)]),
    "pay_beside_fitted": ("each source pays beside earlier fits' misfit "
                          "(LanePipeline._pay_beside_fitted)", None,
                          [(pipeline_module.LanePipeline, "_pay_beside_fitted", _method_first)]),
    "review_explained": ("end of survey: cheap estimates the fits explain set aside "
                         "(LanePipeline._review_explained)", None,
                         [(pipeline_module.LanePipeline, "_review_explained", _method_none)]),
    "far_subtract": ("far fitted fields (4-15 m) subtracted when they vary by the "
                     "threshold (LanePipeline._minus_fitted)", None,
                     [(pipeline_module, "FAR_SUBTRACT_M", pipeline_module.NEAR_SUBTRACT_M)]),
    "line_seed_min_depth": ("shallow points also get line seeds 0.15 m deep "
                            "(fitcore.best_line)", ("line_seed_min_depth_m", 0.0), []),
    # Acceptance rules not written for one seed, for comparison.
    "drop_tails": ("weak sources on a strong one's tails dropped (droprules.drop_tails)",
                   "drop_tails", []),
    "drop_body_lobes": ("sources on a body's lobes dropped (droprules.drop_body_lobes)",
                        "drop_body_lobes", []),
    "search_near_strong": ("shallow objects searched beside strong sources "
                           "(addsources.search_near_strong)", "search_near_strong", []),
    # A new stage, for comparison.
    "sparse_deep": ("deep sources re-modelled as a sparse set (sparsefit.sparse_deep)",
                    "sparse_deep", []),
    "residual_over_budget": ("the residual search may add sources beyond the window's "
                             "budget (fitstages.residual_search)", "residual_over_budget", []),
    "restart_deep": ("deep clusters refitted from starts the data give "
                     "(clusterfit.restart_deep)", "restart_deep", []),
}


def _patched(rule: str) -> ExitStack:
    stack = ExitStack()
    for obj, name, value in RULES[rule][2] if rule != "base" else []:
        stack.enter_context(mock.patch.object(obj, name, value))
    return stack


def fit_override(rule: str) -> dict[str, object]:
    """The `FitConfig` fields ``rule`` off sets (none for ``base`` and for
    rules outside the fit)."""
    switch = RULES[rule][1] if rule != "base" else None
    if switch is None:
        return {}
    if isinstance(switch, str):
        return {switch: False}
    return {switch[0]: switch[1]}


def rule_config(cfg: LaneConfig, rule: str) -> LaneConfig:
    """``cfg`` with the fit switch (or value) of ``rule`` set (the same
    ``cfg`` for ``base`` and for rules outside the fit)."""
    over = fit_override(rule)
    return replace(cfg, fit=replace(cfg.fit, **over)) if over else cfg


def run(seeds: list[int], names: list[str], rules: list[str],
        sink: Callable[[dict], None]) -> list[dict]:
    """Every (seed, scenario) world simulated once and processed with the
    production code (rule ``base``) and once per rule switched off."""
    out = []
    for seed in seeds:
        for name in names:
            d = random_world(name, seed)
            sc = scenario_from_dict(d)
            sim = simulate_survey(sc)
            cfg = replace(base_config(d), locator="dipole")
            for rule in ["base", *rules]:
                t0 = time.perf_counter()
                with _patched(rule):
                    rec = score_run(d, sc, sim, rule_config(cfg, rule))
                rec["rule"] = rule
                sink(rec)
                out.append(rec)
                print(f"# {name} seed {seed} {rule}: {time.perf_counter() - t0:.1f} s, "
                      f"found {rec['found']}/{rec['eligible']}, "
                      f"big missed {len(rec['big_missed'])}, false {rec['false']}", flush=True)
    return out


def table(records: list[dict], markdown: bool = False) -> str:
    """Per rule: the figures without it and their change against ``base`` on
    the same surveys (a run stopped part-way leaves rules with fewer surveys
    than ``base``; each is compared with base's records of its own surveys)."""
    by_rule: dict[str, dict[tuple[str, int], dict]] = {}
    for rec in records:
        by_rule.setdefault(rec["rule"], {})[(rec.get("scenario", ""), rec["seed"])] = rec
    if "base" not in by_rule:
        return "no base records"
    base = by_rule["base"]

    def tally(recs: list[dict]) -> dict:
        t = Tally()
        for rec in recs:
            t.add(rec)
        return t.row()

    keys = ("recall", "big_missed", "depth_ok", "dh_med", "false_per_1000m2")
    cols = ("recall", "big missed", "depth within", "horiz. median m", "false / 1000 m²")
    lines = []
    if markdown:
        lines.append("| rule off | surveys | " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * (len(cols) + 2))
    else:
        lines.append(f"{'rule off':22s} {'surv':>4s} " + " ".join(f"{c:>16s}" for c in cols))
    for rule in ["base", *[r for r in RULES if r in by_rule]]:
        common = [k for k in by_rule[rule] if k in base]
        if not common:
            continue
        r = tally([by_rule[rule][k] for k in common])
        b = tally([base[k] for k in common])
        cells = []
        for k in keys:
            val = f"{r[k]:.0f}" if k == "big_missed" else f"{r[k]:.3f}"
            if rule != "base":
                dv = r[k] - b[k]
                val += f" ({dv:+.0f})" if k == "big_missed" else f" ({dv:+.3f})"
            cells.append(val)
        if markdown:
            lines.append(f"| {rule} | {len(common)} | " + " | ".join(cells) + " |")
        else:
            lines.append(f"{rule:22s} {len(common):4d} " + " ".join(f"{c:>16s}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=TUNING_SEEDS[0])
    ap.add_argument("--held-out", type=int, default=None, metavar="N",
                    help="the first N frozen held-out seeds instead (once, at the end)")
    ap.add_argument("--held-out-from", type=int, default=0, metavar="K",
                    help="with --held-out: start at the K-th held-out seed (continue a run)")
    ap.add_argument("--only", nargs="*", default=None, help="scenarios (default: all)")
    ap.add_argument("--rules", nargs="*", default=None, help="rules (default: all)")
    ap.add_argument("--jsonl", type=Path, default=None)
    ap.add_argument("--summarise", type=Path, nargs="*", default=None)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for name, (what, _s, _p) in RULES.items():
            print(f"{name:22s} {what}")
        return 0
    if args.summarise is not None:
        recs = [json.loads(line) for p in args.summarise
                for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        print(table(recs, args.markdown))
        return 0
    names = args.only or list(SITES)
    rules = args.rules if args.rules is not None else list(RULES)
    bad = [n for n in names if n not in SITES] + [r for r in rules if r not in RULES]
    if bad:
        ap.error(f"unknown scenario or rule {bad[0]!r} (see --list)")
    seeds = (list(HELD_OUT_SEEDS)[args.held_out_from:args.held_out_from + args.held_out]
             if args.held_out is not None
             else list(range(args.first_seed, args.first_seed + args.seeds)))

    def sink(rec: dict) -> None:
        if args.jsonl is not None:
            with args.jsonl.open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")

    print(table(run(seeds, names, rules, sink), args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
