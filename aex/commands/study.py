"""`aex study [STUDY.toml]`: the market-design study (aex/sim/study.py); writes its result and
the recommended rules file that `aex serve --weights` loads."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "study",
        help="tune on train scenarios, choose, evaluate on held-out scenarios (95%% CIs)",
    )
    parser.add_argument(
        "study", nargs="?", default="scenarios/study.toml", help="the study file (TOML)"
    )
    parser.add_argument("--out", type=Path, default=Path("study.json"), help="the result (JSON)")
    parser.add_argument(
        "--rules-out", type=Path, default=None, help="write the recommended rules file here"
    )
    parser.add_argument("--ticks", type=int, default=None, help="override the study's ticks")
    parser.add_argument("--workers", type=int, default=1, help="processes (1 = this one)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from aex.sim.scenario import ScenarioError
    from aex.sim.study import load_study, run_study
    from aex.sim.sweep import ProcessExecutor, ProgressExecutor, SerialExecutor, progress_bar

    try:
        study = load_study(args.study)
    except (OSError, ValueError) as error:
        print(f"aex study: {error}", file=sys.stderr)
        return 2
    if args.ticks is not None:
        study = dataclasses.replace(study, ticks=args.ticks)
    pool: Any = ProcessExecutor(args.workers) if args.workers > 1 else SerialExecutor()

    def say(stage: str) -> None:
        if not args.no_progress:
            from tqdm import tqdm

            tqdm.write(f"aex study: {stage}", file=sys.stderr)

    try:
        # one bar of finished runs over the whole study (its total is not known up front)
        with progress_bar(None, unit="run", disable=args.no_progress) as bar:
            result = run_study(study, executor=ProgressExecutor(pool, bar.update), progress=say)
    except (ScenarioError, KeyError) as error:
        print(f"aex study: {error}", file=sys.stderr)
        return 2
    finally:
        if isinstance(pool, ProcessExecutor):
            pool.close()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.rules_out is not None:
        args.rules_out.write_text(json.dumps(result["recommended_rules"], indent=2) + "\n")
    print(f"wrote {args.out}; chosen rules: {result['chosen']}")
    print(render(result))
    return 0


def _ci(cell: Mapping[str, Any], digits: int = 3) -> str:
    return f"{cell['mean']:.{digits}f} [{cell['ci_low']:.{digits}f}, {cell['ci_high']:.{digits}f}]"


def render(result: dict[str, Any]) -> str:
    """The study's tables as Markdown (docs/market-design.md carries them)."""
    lines = ["### Tuned weights (train) and their bootstrap spread", ""]
    lines += [
        "| weight | tuned | bootstrap mean | sd | 2.5% | 97.5% |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, w in result["tuned_weights"].items():
        lines.append(
            f"| {name} | {w['tuned']:.3f} | {w['mean']:.3f} | {w['sd']:.3f} | {w['p2_5']:.3f} "
            f"| {w['p97_5']:.3f} |"
        )
    lines += ["", "### Choice on the train scenarios", ""]
    lines += [
        "| rules | objective | worst adversary upper bound | binding constraint |",
        "|---|---:|---:|---|",
    ]
    for c in result["choice"]:
        mark = " (chosen)" if c["rules"] == result["chosen"] else ""
        binding = c.get("binding")
        where = f"{binding['scenario']}: {binding['strategy']}" if binding else "—"
        lines.append(
            f"| {c['rules']}{mark} | {c['objective']:.4f} "
            f"| {c['worst_adversary_upper_bound']:.3f} | {where} |"
        )
    lines += ["", "### Held-out scenarios: paired difference from the spec's defaults", ""]
    lines += [
        "| rules | scenario | objective | Δ objective | Δ welfare | honest profit "
        "| Δ honest profit |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["held_out"]:
        if r["scenario"] == "all":
            continue
        lines.append(
            f"| {r['rules']} | {r['scenario']} | {_ci(r['objective'])} "
            f"| {_ci(r['objective_diff'])} "
            f"| {_ci(r['welfare_diff'])} | {_ci(r['honest_profit'], 2)} "
            f"| {_ci(r['honest_profit_diff'], 2)} |"
        )
    lines += ["", "Pooled over the held-out scenarios (percent of the spec's mean):", ""]
    lines += ["| rules | Δ objective % | Δ welfare % | Δ honest profit % |", "|---|---:|---:|---:|"]
    for r in result["held_out"]:
        if r["scenario"] == "all":
            lines.append(
                f"| {r['rules']} | {_ci(r['objective_diff_pct'], 2)} "
                f"| {_ci(r['welfare_diff_pct'], 2)} "
                f"| {_ci(r['honest_profit_diff_pct'], 2)} |"
            )
    for rules, rows in result["deviation_gains"].items():
        lines += [
            "",
            f"### Deviation gain on the held-out scenarios under `{rules}`"
            " (USD per provider per run)",
            "",
        ]
        scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
        lines += [
            "| strategy | " + " | ".join(scenarios) + " |",
            "|---|" + "---:|" * len(scenarios),
        ]
        for strategy in dict.fromkeys(r["strategy"] for r in rows):
            cells = [
                next(_ci(r, 2) for r in rows if r["strategy"] == strategy and r["scenario"] == s)
                for s in scenarios
            ]
            lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    bar = result.get("held_out_bar")
    if bar is not None:
        verdict = "met" if bar["met"] else "NOT met"
        lines += [
            "",
            f"Held-out incentive bar (every adversary's upper bound ≤ 0 under "
            f"`{result['chosen']}`): {verdict}.",
        ]
        for first, again in zip(bar["open_after_incentive_test"], bar["confirmation"], strict=True):
            lines.append(
                f"- {first['scenario']}: {first['strategy']}, left open by the incentive test"
                f" ({first['n_seeds']} seeds): {_ci(first, 2)}; confirmation on"
                f" {again['n_seeds']} fresh seeds: {_ci(again, 2)}"
            )
    b = result["honest_break_even"]
    lines += [
        "",
        f"Honest providers' profit per provider per run under `{b['rules']}`, held out: "
        f"{_ci(b, 2)} USD",
    ]
    return "\n".join(lines)
