"""`make bench` / `python -m bench [NAME ...]`: run benchmarks, print ratios, write a summary.

    python -m bench                      every benchmark
    python -m bench bench_scoring sim    the named ones ("bench_" may be left off)
    python -m bench --list               the benchmark names
    python -m bench --out FILE           the JSON summary's path (bench/results/latest.json)
    python -m bench --compare OLD [NEW]  flag ratios that fell by more than --tolerance
                                         (NEW defaults to bench/results/latest.json)

Every benchmark module defines `main(argv: list[str]) -> list[Figure]` and prints its own
details; the figures (bench/harness.py) are printed again here as ratios and written to the
summary. docs/performance.md describes each benchmark and its baseline.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from bench.harness import Figure, compare, summary, write_summary

# One entry per benchmark module; each defines main(argv) -> list[Figure].
BENCHMARKS: tuple[str, ...] = (
    "bench.bench_scoring",
    "bench.reputation",
    "bench.bench_certs",
    "bench.bench_api",
    "bench.bench_market",
    "bench.bench_sim",
    "bench.bench_pg",
    "bench.bench_subscriptions",
    "bench.bench_costs",
)
RESULTS = Path(__file__).resolve().parent / "results"
LATEST = RESULTS / "latest.json"
DEFAULT_TOLERANCE = 0.10


def short_name(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def select(names: list[str]) -> list[str]:
    """The modules named (with or without the "bench_" prefix), in BENCHMARKS order."""
    known = {short_name(module): module for module in BENCHMARKS}
    wanted = set()
    for name in names:
        module = known.get(name) or known.get(f"bench_{name}")
        if module is None:
            raise SystemExit(f"unknown benchmark {name!r}; known: {', '.join(known)}")
        wanted.add(module)
    return [module for module in BENCHMARKS if not names or module in wanted]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--out", type=Path, default=LATEST, help="the JSON summary to write")
    parser.add_argument(
        "--compare", nargs="+", metavar="SUMMARY", help="OLD [NEW]: compare two summaries"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="relative drop of a ratio that counts as a regression (default 0.10)",
    )
    return parser


def run_compare(paths: list[str], tolerance: float) -> int:
    if len(paths) > 2:
        raise SystemExit("--compare takes OLD [NEW]")
    old_path, new_path = Path(paths[0]), Path(paths[1]) if len(paths) > 1 else LATEST
    old, new = (json.loads(path.read_text()) for path in (old_path, new_path))
    regressions, others, unmatched = compare(old, new, tolerance=tolerance)
    print(f"{new_path} against {old_path}, tolerance {tolerance:.0%} (ratios to baselines)")
    for change in others:
        print(f"  ok          {change.key:60} {change.old_ratio:7.1%} -> {change.new_ratio:7.1%}")
    for change in regressions:
        print(f"  REGRESSION  {change.key:60} {change.old_ratio:7.1%} -> {change.new_ratio:7.1%}")
    for key in unmatched:
        print(f"  (in one summary only) {key}")
    return 1 if regressions else 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        print("\n".join(short_name(module) for module in BENCHMARKS))
        return 0
    if args.compare:
        return run_compare(args.compare, args.tolerance)
    selected = select(args.names)
    figures: list[Figure] = []
    for module in selected:
        print(f"== {module}", flush=True)
        # Each bench gets no arguments of its own here: `python -m bench.bench_sim 2000 ...`
        # takes them when run directly.
        got = importlib.import_module(module).main([])
        figures += got
        for figure in got:
            print(figure.line(), flush=True)
    write_summary(args.out, summary(figures, [short_name(module) for module in selected]))
    print(f"summary: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
