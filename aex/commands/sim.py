"""`aex sim SCENARIO.toml --out runs.duckdb`: run a scenario into the market log and summarise."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim", help="run a market scenario into a DuckDB market log"
    )
    parser.add_argument("scenario", help="a scenarios/*.toml file or a registered scenario name")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/sim.duckdb"),
        help="the DuckDB market log (appended to)",
    )
    parser.add_argument("--ticks", type=int, default=None, help="override the scenario's ticks")
    parser.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    parser.add_argument(
        "--replications", type=int, default=1, help="runs with consecutive seeds from --seed"
    )
    parser.add_argument(
        "--block-ticks", type=int, default=None, help="ticks per written block (the scenario's)"
    )
    parser.add_argument(
        "--log-bids",
        choices=("none", "winners", "all"),
        default=None,
        help="which bids the log keeps (the scenario's; `all` is needed to backtest)",
    )
    parser.add_argument("--weights", type=Path, default=None, help="a weights JSON (aex tune)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def apply_overrides(params: Any, args: argparse.Namespace) -> Any:
    from aex.sim.runner import with_rules
    from aex.sim.scenario import ScenarioError, parse_scenario

    changes: dict[str, Any] = {}
    if args.ticks is not None:
        changes["ticks"] = args.ticks
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.block_ticks is not None:
        changes["block_ticks"] = args.block_ticks
    if args.log_bids is not None:
        changes["log"] = dataclasses.replace(params.log, bids=args.log_bids)
    params = dataclasses.replace(params, **changes)
    if args.weights is not None:
        import json

        try:
            document = json.loads(args.weights.read_text())
        except (OSError, ValueError) as error:
            raise ScenarioError(f"{args.weights}: {error}") from error
        params = with_rules(params, document)
    # re-validate the overridden values through the one parser
    parse_scenario(_as_table(params))
    return params


def _as_table(params: Any) -> dict[str, Any]:
    table = dataclasses.asdict(params)
    table["providers"] = [dict(g) for g in table["providers"]]
    if table["seed"] is None:
        del table["seed"]
    return table


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from aex import marketlog
    from aex.sim.runner import resolve_seed, simulate
    from aex.sim.scenario import ScenarioError, load_scenario

    try:
        params = apply_overrides(load_scenario(args.scenario), args)
    except ScenarioError as error:
        print(f"aex sim: {error}", file=sys.stderr)
        return 2
    params = dataclasses.replace(params, seed=resolve_seed(params.seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    con = marketlog.connect(args.out)
    honest: list[float] = []
    try:
        for replication in range(args.replications):
            bar = tqdm(total=params.ticks, unit="tick", disable=args.no_progress, leave=False)
            result, _ = simulate(params, out=con, replication=replication, progress=_ticker(bar))
            bar.close()
            summary = marketlog.run_summary(con, result.run_id)
            _print_summary(result, summary)
            honest.append(summary["honest_profit_per_provider_minor"])
        _print_break_even(honest)
    except BaseException:
        print(f"reproduce with: aex sim {args.scenario} --seed {params.seed}", file=sys.stderr)
        raise
    finally:
        con.close()
    return 0


def _print_break_even(honest: list[float]) -> None:
    # The economics check: an honest provider breaks even or better, over seeds (replications)
    # when there are several, else over the run's honest providers (printed per run above).
    from aex.marketlog.metrics import mean_interval

    honest = [h for h in honest if h == h]  # runs without honest providers report NaN
    if len(honest) < 2:
        return
    mean, low, high = mean_interval(honest)
    verdict = "yes" if high >= 0 else "NO: honest providers lose money"
    print(
        f"honest profit per provider over {len(honest)} seeds: {mean / 100:,.2f} "
        f"[{low / 100:,.2f}, {high / 100:,.2f}] (95% CI, major units); break even: {verdict}"
    )


def _ticker(bar: Any) -> Any:
    def advance(log: Any) -> None:
        bar.update(log.ticks)

    return advance


def _print_summary(result: Any, summary: dict[str, Any]) -> None:
    print(
        f"run {result.run_id} (seed {result.seed}, replication {result.replication}): "
        f"{result.ticks} ticks, {result.work_items:,} work items, {result.bids:,} bids"
    )
    print(f"  auctions cleared/s      {result.auctions_per_s:,.0f}")
    print(f"  success rate            {result.success_rate:.4f}")
    print(f"  fee per posted item     {result.fee_per_work_minor / 100:.4f} (major units)")
    for key in (
        "fill_rate",
        "consumer_surplus_minor",
        "fee_revenue_minor",
        "price_mean_minor",
        "price_to_budget_mean",
        "hhi",
        "honest_win_share",
        "attacker_profit_minor",
    ):
        value = summary[key]
        if value is None:  # a market that awarded nothing has no mean price, no HHI ...
            print(f"  {key:<24}n/a")
        elif isinstance(value, float):
            print(f"  {key:<24}{value:,.4f}")
        else:
            print(f"  {key:<24}{value:,}")
    for strategy, profit in summary["profit_by_strategy_minor"].items():
        print(f"  profit[{strategy}]".ljust(28) + f" {profit:,}")
    mean = summary["honest_profit_per_provider_minor"]
    if mean is not None and mean == mean:  # not None or NaN: the run has honest providers
        low, high = summary["honest_profit_ci_low_minor"], summary["honest_profit_ci_high_minor"]
        verdict = "yes" if summary["honest_break_even"] else "NO: honest providers lose money"
        print(
            f"  honest profit/provider  {mean / 100:,.2f} [{low / 100:,.2f}, {high / 100:,.2f}]"
            f" (95% CI over providers, major units); break even: {verdict}"
        )
