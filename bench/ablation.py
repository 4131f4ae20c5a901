"""Ablation of the lane fit's rules: the benchmark with one named rule switched off at a time.

Run: ``.venv/bin/python bench/ablation.py [--seeds N | --held-out N]
[--only SCENARIO ...] [--rules RULE ...] [--jsonl FILE]``;
``--summarise FILE ...`` prints the table of records written earlier.
``--list`` names the rules.

Each rule in `RULES` was written for what one benchmark seed showed (issue
22, item 2); here it is switched off by `unittest.mock.patch` (a stage
replaced by a pass-through, or a constant set so that the rule never
fires), and the same simulated surveys are processed with and without it.
Each world is simulated once and processed once per rule
(`accuracy_lanes.score_run`), so every row sees the same data. The table
gives, per rule, the benchmark's figures without the rule and their change
against the production code (``base``): recall, big bodies missed, depth
within max(15 %, 0.10 m), horizontal median, false picks per 1000 m^2.
A rule pays if switching it off costs recall, big bodies or depth, or adds
false picks; one whose removal changes nothing or helps does not.

The switching lives here only (one table, rule name -> patches); the
production code has no switches for it.
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

from acquisition.dsp import fit as fit_module
from acquisition.dsp import fitcore as fitcore_module
from acquisition.dsp import pipeline as pipeline_module
from simulator.scenario import scenario_from_dict
from simulator.survey import simulate_survey


def _first(srcs, *_a, **_k):
    """A stage that keeps what it was given (its first argument)."""
    return srcs


def _joint_refit_off(p, _x, _y, v, *_a, **_k):
    """`_joint_refit` off: the sources and data (its 4th argument) as they were."""
    return p, v


def _method_first(_self, fits, *_a, **_k):
    return fits


def _method_none(_self, *_a, **_k):
    return []


#: Rule name -> (what it does, patches (object, attribute, replacement)).
#: Ordered by what the earlier comments named benchmark seeds for first.
RULES: dict[str, tuple[str, list[tuple[object, str, object]]]] = {
    "split_deep": ("two deep sources fitted as one are split (broadfit._split_deep)",
                   [(fit_module, "_split_deep", _first)]),
    "drop_level_explained": ("sources a per-lane level explains are dropped "
                             "(broadfit._drop_level_explained)",
                             [(fit_module, "_drop_level_explained", _first)]),
    "add_isolated": ("an isolated residual signal in a broad window gets a source "
                     "(broadfit._add_isolated)", [(fit_module, "_add_isolated", _first)]),
    "joint_refit": ("broad window: joint refit with lane offsets (broadfit._joint_refit)",
                    [(fit_module, "_joint_refit", _joint_refit_off)]),
    "recentre_isolated": ("isolated sources refitted on their own samples "
                          "(broadfit._recentre_isolated)",
                          [(fit_module, "_recentre_isolated", _first)]),
    "replace_beside_lines": ("point sources beside a line fit replaced "
                             "(elongate._replace_beside_lines)",
                             [(fit_module, "_replace_beside_lines", _first)]),
    "bomb_moment_keep": ("a bomb-sized source is kept under the threshold "
                         "(fit._drop_subthreshold, pipeline._review_threshold)",
                         [(fit_module, "BOMB_MOMENT", math.inf),
                          (pipeline_module, "BOMB_MOMENT", math.inf)]),
    "pay_beside_fitted": ("each source pays beside earlier fits' misfit "
                          "(LanePipeline._pay_beside_fitted)",
                          [(pipeline_module.LanePipeline, "_pay_beside_fitted", _method_first)]),
    "review_explained": ("end of survey: cheap estimates the fits explain set aside "
                         "(LanePipeline._review_explained)",
                         [(pipeline_module.LanePipeline, "_review_explained", _method_none)]),
    "far_subtract": ("far fitted fields (4-15 m) subtracted when they vary by the "
                     "threshold (LanePipeline._minus_fitted)",
                     [(pipeline_module, "FAR_SUBTRACT_M", pipeline_module.NEAR_SUBTRACT_M)]),
    # Off: the extra line seeds of a near-field point start at 0 m, not 0.15 m.
    "line_seed_min_depth": ("near-field points' extra line seeds 0.15 m deep, "
                            "not at the surface (fitcore._best_line)",
                            [(fitcore_module, "LINE_SEED_MIN_DEPTH_M", 0.0)]),
    # Acceptance rules not written for one seed, for comparison.
    "drop_tails": ("weak sources on a strong one's tails dropped (fit._drop_tails)",
                   [(fit_module, "_drop_tails", _first)]),
    "drop_body_lobes": ("sources on a body's lobes dropped (fit._drop_body_lobes)",
                        [(fit_module, "_drop_body_lobes", _first)]),
    "search_near_strong": ("shallow objects searched beside strong sources "
                           "(fit._search_near_strong)",
                           [(fit_module, "_search_near_strong", _first)]),
}


def _patched(rule: str) -> ExitStack:
    stack = ExitStack()
    for obj, name, value in RULES[rule][1] if rule != "base" else []:
        stack.enter_context(mock.patch.object(obj, name, value))
    return stack


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
                    rec = score_run(d, sc, sim, cfg)
                rec["rule"] = rule
                sink(rec)
                out.append(rec)
                print(f"# {name} seed {seed} {rule}: {time.perf_counter() - t0:.1f} s, "
                      f"found {rec['found']}/{rec['eligible']}, "
                      f"big missed {len(rec['big_missed'])}, false {rec['false']}", flush=True)
    return out


def table(records: list[dict], markdown: bool = False) -> str:
    """Per rule: the figures without it and their change against ``base``."""
    tallies: dict[str, Tally] = {}
    for rec in records:
        tallies.setdefault(rec["rule"], Tally()).add(rec)
    if "base" not in tallies:
        return "no base records"
    b = tallies["base"].row()
    keys = ("recall", "big_missed", "depth_ok", "dh_med", "false_per_1000m2")
    cols = ("recall", "big missed", "depth within", "horiz. median m", "false / 1000 m²")
    lines = []
    if markdown:
        lines.append("| rule off | surveys | " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * (len(cols) + 2))
    else:
        lines.append(f"{'rule off':22s} {'surv':>4s} " + " ".join(f"{c:>16s}" for c in cols))
    for rule in ["base", *[r for r in RULES if r in tallies]]:
        r = tallies[rule].row()
        cells = []
        for k in keys:
            val = f"{r[k]:.0f}" if k == "big_missed" else f"{r[k]:.3f}"
            if rule != "base":
                dv = r[k] - b[k]
                val += f" ({dv:+.0f})" if k == "big_missed" else f" ({dv:+.3f})"
            cells.append(val)
        if markdown:
            lines.append(f"| {rule} | {r['surveys']} | " + " | ".join(cells) + " |")
        else:
            lines.append(f"{rule:22s} {r['surveys']:4d} " + " ".join(f"{c:>16s}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=TUNING_SEEDS[0])
    ap.add_argument("--held-out", type=int, default=None, metavar="N",
                    help="the first N frozen held-out seeds instead (once, at the end)")
    ap.add_argument("--only", nargs="*", default=None, help="scenarios (default: all)")
    ap.add_argument("--rules", nargs="*", default=None, help="rules (default: all)")
    ap.add_argument("--jsonl", type=Path, default=None)
    ap.add_argument("--summarise", type=Path, nargs="*", default=None)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for name, (what, _p) in RULES.items():
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
    seeds = (list(HELD_OUT_SEEDS)[:args.held_out] if args.held_out is not None
             else list(range(args.first_seed, args.first_seed + args.seeds)))

    def sink(rec: dict) -> None:
        if args.jsonl is not None:
            with args.jsonl.open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")

    print(table(run(seeds, names, rules, sink), args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
