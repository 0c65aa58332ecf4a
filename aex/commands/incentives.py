"""`aex incentives SCENARIO --seeds N`: the deviation gain of every strategy, with 95% CIs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "incentives",
        help="deviation gain per strategy (common random numbers, 95%% CI over seeds)",
    )
    parser.add_argument("scenario", help="a scenarios/*.toml file or a registered scenario name")
    parser.add_argument("--seeds", type=int, default=10, help="seeds: the scenario's seed, +1, ...")
    parser.add_argument("--ticks", type=int, default=None, help="override the scenario's ticks")
    parser.add_argument("--seed", type=int, default=None, help="the first seed")
    parser.add_argument(
        "--strategies", default=None, help="comma-separated strategies (default: every one)"
    )
    parser.add_argument("--deviators", type=int, default=3, help="honest providers switched")
    parser.add_argument("--weights", type=Path, default=None, help="a weights JSON (aex tune)")
    parser.add_argument("--workers", type=int, default=1, help="processes (1 = this one)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from aex.commands.sim import apply_overrides
    from aex.sim import incentives, strategies
    from aex.sim.scenario import ScenarioError, load_scenario
    from aex.sim.sweep import ProcessExecutor, ProgressExecutor, SerialExecutor, progress_bar

    try:
        overrides = argparse.Namespace(
            ticks=args.ticks,
            seed=args.seed,
            block_ticks=None,
            log_bids=None,
            weights=args.weights,
        )
        params = apply_overrides(load_scenario(args.scenario), overrides)
    except ScenarioError as error:
        print(f"aex incentives: {error}", file=sys.stderr)
        return 2
    names = (
        [n.strip() for n in args.strategies.split(",") if n.strip()]
        if args.strategies
        else list(strategies.NAMES)
    )
    unknown = [n for n in names if n not in strategies.STRATEGIES]
    if unknown:
        known = ", ".join(strategies.NAMES)
        print(f"aex incentives: unknown strategies {unknown}; known: {known}", file=sys.stderr)
        return 2
    if args.seeds < 2:
        print("aex incentives: --seeds must be at least 2 (an interval)", file=sys.stderr)
        return 2
    seeds = incentives.seeds_for(params, args.seeds)
    pool: Any = ProcessExecutor(args.workers) if args.workers > 1 else SerialExecutor()
    # one run per (strategy, seed) and one baseline per seed (aex/sim/incentives.py)
    total = (len(names) + 1) * len(seeds)
    try:
        with progress_bar(total, unit="run", disable=args.no_progress) as bar:
            table = incentives.deviation_gains(
                params,
                names,
                seeds,
                deviators=args.deviators,
                executor=ProgressExecutor(pool, bar.update),
            )
    finally:
        if isinstance(pool, ProcessExecutor):
            pool.close()
    print(
        f"deviation gain, USD per provider per run ({params.name}, {params.ticks} ticks, "
        f"seeds {seeds[0]}..{seeds[-1]}, {args.deviators} deviators, 95% Student-t CI)"
    )
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True, float_precision=3):
        print(table.select("strategy", "mean", "ci_low", "ci_high", "n_seeds"))
    positive = table.filter(pl.col("ci_high") > 0)["strategy"].to_list()
    print(
        "strategies whose gain may be positive (CI upper bound > 0): "
        + (", ".join(positive) if positive else "none")
    )
    return 0
