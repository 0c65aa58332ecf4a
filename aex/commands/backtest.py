"""`aex backtest RUNS.duckdb`: re-score recorded auctions under other weights."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aex.commands._errors import UserError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "backtest", help="re-score a recorded market log under other weights"
    )
    parser.add_argument("log", type=Path, help="a market log (aex sim --log-bids all, aex export)")
    parser.add_argument("--run-id", type=int, default=None, help="default: the latest run")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--weights", type=Path, help="a weights JSON file (aex tune)")
    group.add_argument(
        "--preset", default="lowest_price", help="a preset (balanced, lowest_price, best_quality)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import duckdb

    from aex.sim import _core
    from aex.sim.backtest import backtest, check_backtestable, recorded_bids
    from aex.sim.sweep import progress_bar

    if args.weights is not None:
        # any rules file (aex tune, aex study): the backtest re-ranks the logged components
        # under its weights and prices the winners under its payment rule
        rules = _core.rules_from_json(json.loads(args.weights.read_text()))
        if not isinstance(rules, _core.ExchangeRules):
            print(f"aex backtest: {args.weights}: {rules.field}: {rules.detail}", file=sys.stderr)
            return 2
        weights, payment_rule = rules.weights, rules.payment_rule
    else:
        weights, payment_rule = _core.PRESETS[args.preset], _core.PaymentRule.FIRST_SCORE
    con = duckdb.connect(str(args.log), read_only=True)
    run_id = args.run_id
    if run_id is None:
        run_id = int(con.execute("SELECT max(run_id) FROM runs").fetchall()[0][0])
    try:
        check_backtestable(con, run_id)  # before the bar: a refusal is one line
        with progress_bar(
            recorded_bids(con, run_id), unit="bid", desc="re-score", disable=args.no_progress
        ) as bar:
            result = backtest(con, run_id, weights, payment_rule=payment_rule, progress=bar.update)
    except ValueError as error:  # the log cannot answer: not this run, or not all bids logged
        raise UserError(f"{args.log}: {error}") from None
    print(f"backtest of run {run_id} under {args.weights or args.preset}:")
    for key, value in result.summary.items():
        print(f"  {key:<32}{value:,.4f}" if isinstance(value, float) else f"  {key:<32}{value:,}")
    return 0
