"""`aex tune`: search scoring weights on simulated markets; write them for `aex serve --weights`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "tune", help="tune scoring weights on simulated markets (differential evolution)"
    )
    parser.add_argument("scenarios", nargs="*", default=["default"], help="scenario files/names")
    parser.add_argument(
        "--out", type=Path, default=Path("tuned.json"), help="the weights file to write"
    )
    parser.add_argument("--ticks", type=int, default=60, help="ticks per evaluation run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per candidate (CRN)")
    parser.add_argument("--check-seeds", type=int, default=8, help="fresh seeds for the CIs")
    parser.add_argument("--maxiter", type=int, default=5, help="differential evolution generations")
    parser.add_argument(
        "--popsize", type=int, default=4, help="population per generation, per weight"
    )
    parser.add_argument("--workers", type=int, default=0, help="processes (0 = one per core)")
    parser.add_argument("--serial", action="store_true", help="no process pool")
    parser.add_argument("--dask", default=None, help="a Dask scheduler address")
    parser.add_argument(
        "--incentives",
        default="",
        help="comma-separated strategies whose deviation-gain upper bound is a constraint",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from aex.sim import _core
    from aex.sim.scenario import load_scenario
    from aex.sim.sweep import DaskExecutor, ProcessExecutor, SerialExecutor, progress_bar
    from aex.sim.tune import WEIGHT_FIELDS, candidates, check_runs, tune

    scenarios = [dataclasses.replace(load_scenario(s), ticks=args.ticks) for s in args.scenarios]
    seeds = list(range(1, args.seeds + 1))
    check_seeds = list(range(10_001, 10_001 + args.check_seeds))
    executor: Any
    if args.dask:
        from distributed import Client

        executor = DaskExecutor(Client(args.dask))  # type: ignore[no-untyped-call]
    elif args.serial:
        executor = SerialExecutor()
    else:
        executor = ProcessExecutor(args.workers or None)
    # two bars on stderr: the search's candidate evaluations, then the check runs
    searching = progress_bar(
        candidates(args.maxiter, args.popsize),
        unit="candidate",
        desc="search",
        disable=args.no_progress,
    )
    checking: list[Any] = []

    def checked(n: int) -> None:
        if not checking:
            searching.close()
            total = check_runs(len(scenarios), len(check_seeds))
            checking.append(progress_bar(total, unit="run", desc="check", disable=args.no_progress))
        checking[0].update(n)

    try:
        result = tune(
            scenarios,
            seeds=seeds,
            check_seeds=check_seeds,
            maxiter=args.maxiter,
            popsize=args.popsize,
            executor=executor,
            incentive_strategies=[n.strip() for n in args.incentives.split(",") if n.strip()],
            progress=searching.update,
            check_progress=checked,
        )
    finally:
        for bar in (searching, *checking):
            bar.close()
        if isinstance(executor, ProcessExecutor):
            executor.close()
    # The weights were tuned under the scenarios' other rules (calibration, payment rule,
    # reputation): the file carries them, so that `aex serve --weights` runs what was tuned.
    # (compared without their weights, which the search replaces: only the other rules count)
    ruled = {
        json.dumps(
            _core.rules_to_json(dataclasses.replace(s.rules, weights=result.weights)),
            sort_keys=True,
        )
        for s in scenarios
    }
    if len(ruled) > 1:
        print(
            "aex tune: the scenarios run different rules; the file takes the first one's",
            file=sys.stderr,
        )
    document = _core.rules_to_json(
        dataclasses.replace(scenarios[0].rules, weights=result.weights), name="tuned"
    )
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out} after {result.evaluations} candidate evaluations")
    for field in WEIGHT_FIELDS:
        print(f"  {field:<14}{getattr(result.weights, field):.4f}")
    for label, est in (
        ("tuned", result.tuned),
        ("balanced", result.baseline),
        ("tuned − balanced", result.difference),
    ):
        print(
            f"  objective {label:<17}{est.mean:8.4f}  95% CI [{est.low:.4f}, {est.high:.4f}]"
            f"  (n={est.n})"
        )
    return 0
