"""`aex sensitivity [SCENARIO] --method morris|sobol`: global sensitivity of market welfare to
scenario parameters (aex/sim/sensitivity.py), printed per measure and written as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sensitivity",
        help="sensitivity of welfare to scenario parameters (Morris or Sobol, common seeds)",
    )
    parser.add_argument(
        "scenario",
        nargs="?",
        default=None,
        help="a scenarios/*.toml file or a registered name (default: the parameter file's)",
    )
    parser.add_argument(
        "--method",
        choices=("morris", "sobol"),
        default="morris",
        help="Morris elementary effects (screening) or Sobol indices (variance shares)",
    )
    parser.add_argument(
        "--params",
        type=Path,
        default=None,
        help="a parameter file: paths and bounds (default: scenarios/sensitivity.toml)",
    )
    parser.add_argument("--trajectories", type=int, default=10, help="Morris trajectories")
    parser.add_argument("--levels", type=int, default=4, help="Morris grid levels (even)")
    parser.add_argument(
        "--samples", type=int, default=64, help="Sobol base samples (a power of two)"
    )
    parser.add_argument("--seeds", type=int, default=2, help="seeds per point: seed, seed + 1, ...")
    parser.add_argument("--seed", type=int, default=None, help="the first seed (the scenario's)")
    parser.add_argument("--ticks", type=int, default=None, help="override the scenario's ticks")
    parser.add_argument("--sampler-seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes in the pool (0: in this process)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("runs/sensitivity.json"), help="the JSON result"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from aex.commands._errors import UserError
    from aex.commands.sim import apply_overrides
    from aex.sim import incentives, sensitivity
    from aex.sim.scenario import load_scenario
    from aex.sim.sweep import ProcessExecutor, ProgressExecutor, SerialExecutor, progress_bar

    if args.seeds < 1:
        raise UserError("--seeds must be at least 1")
    if args.workers < 0:
        raise UserError("--workers must be >= 0")
    if args.method == "morris" and (args.trajectories < 2 or args.levels < 2 or args.levels % 2):
        raise UserError("--trajectories must be >= 2 and --levels an even number >= 2")
    if args.method == "sobol" and (args.samples < 2 or args.samples & (args.samples - 1)):
        raise UserError(f"--samples must be a power of two (got {args.samples})")
    chosen = sensitivity.load_parameters(args.params or sensitivity.DEFAULT_PARAMETERS)
    overrides = argparse.Namespace(
        ticks=args.ticks, seed=args.seed, block_ticks=None, log_bids=None, weights=None
    )
    base = apply_overrides(load_scenario(args.scenario or chosen.scenario), overrides)
    seeds = incentives.seeds_for(base, args.seeds)
    pool: Any = ProcessExecutor(args.workers) if args.workers > 0 else SerialExecutor()
    bar = progress_bar(None, unit="run", disable=args.no_progress)
    executor = ProgressExecutor(pool, bar.update)
    try:
        if args.method == "morris":
            result = sensitivity.morris(
                base,
                chosen.parameters,
                seeds=seeds,
                trajectories=args.trajectories,
                levels=args.levels,
                sampler_seed=args.sampler_seed,
                executor=executor,
            )
        else:
            result = sensitivity.sobol(
                base,
                chosen.parameters,
                seeds=seeds,
                samples=args.samples,
                sampler_seed=args.sampler_seed,
                executor=executor,
            )
    finally:
        bar.close()
        if isinstance(pool, ProcessExecutor):
            pool.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    print(
        f"{result.method} sensitivity of welfare ({base.name}, {base.ticks} ticks, "
        f"{result.evaluations} runs: {len(result.points)} points × seeds "
        f"{seeds[0]}..{seeds[-1]}, sampler seed {args.sampler_seed}; {base.currency}, 95% "
        "bootstrap half-widths)"
    )
    with pl.Config(
        tbl_rows=-1, tbl_hide_dataframe_shape=True, float_precision=3, tbl_width_chars=120
    ):
        for measure, frame in result.indices.items():
            print(f"\n{measure}")
            print(frame)
    print(f"\nwritten to {args.out}")
    return 0
