"""The reference market (scenarios/reference_reverse_auction.toml): auctions/s and peak memory.

Each configuration runs in its own subprocess so that peak RSS (resource.getrusage) is its own.
Reports wall-clock auctions/s, auctions per CPU-second of the process (user + system, both
threads: the shared 2-core machine makes wall time noisy), the success rate, the fee per posted
item and the peak RSS. `python -m bench.bench_sim [TICKS] [LEVELS] [ROUNDS]` (e.g. `2000
none,winners 3`); AEX_BENCH_SIM_TICKS overrides the ticks. `python -m bench bench_sim` passes
no arguments (the selector is not a tick count). Each level runs ROUNDS (>= 3, default
AEX_BENCH_ROUNDS or 3) times in fresh processes, interleaved with the other levels; the lines
report the medians, and each level's rate is a ratio to the run without a bid log.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import MIN_ROUNDS, Figure, rounds_from_env

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "reference_reverse_auction.toml"
LEVELS = ("none", "winners", "all")
WITH_LOG_TARGET = 0.80  # issue 14: logging winners costs < 20% of throughput


def _one(ticks: int, log_bids: str, out: str) -> dict[str, object]:
    import dataclasses

    from aex.sim.runner import simulate
    from aex.sim.scenario import load_scenario

    params = load_scenario(SCENARIO)
    params = dataclasses.replace(
        params, ticks=ticks, log=dataclasses.replace(params.log, bids=log_bids)
    )
    cpu_start = time.process_time()
    result, con = simulate(params, out=out)
    cpu_s = time.process_time() - cpu_start
    con.close()
    return {
        "ticks": ticks,
        "log_bids": log_bids,
        "auctions": result.awards,
        "bids": result.bids,
        "wall_s": round(result.elapsed_s, 3),
        "cpu_s": round(cpu_s, 3),
        "auctions_per_s": round(result.auctions_per_s),
        "auctions_per_cpu_s": round(result.awards / cpu_s),
        "success_rate": round(result.success_rate, 4),
        "fee_per_work": round(result.fee_per_work_minor / 100, 4),
        "rounds_mean": round(result.rounds_mean, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "db_mib": round(Path(out).stat().st_size / 2**20, 1),
    }


def _run(ticks: int, level: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "bench.duckdb")
        call = f"b._one({ticks}, {level!r}, {out!r})"
        code = f"import json, bench.bench_sim as b; print(json.dumps({call}))"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        figures: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.bench_sim [TICKS] [LEVELS] [ROUNDS]`; `python -m bench sim` passes none."""
    args = sys.argv[1:] if argv is None else argv
    ticks = int(args[0]) if args else int(os.environ.get("AEX_BENCH_SIM_TICKS", "2000"))
    levels = args[1].split(",") if len(args) > 1 else list(LEVELS)
    rounds = max(MIN_ROUNDS, int(args[2])) if len(args) > 2 else rounds_from_env()
    # Interleaved: one run of every level per round, so each level sees the same load.
    runs: dict[str, list[dict[str, object]]] = {level: [] for level in levels}
    for _ in range(rounds):
        for level in levels:
            runs[level].append(_run(ticks, level))
    medians: dict[str, dict[str, object]] = {}
    for level in levels:
        figures = dict(runs[level][0])
        for key in ("wall_s", "cpu_s", "auctions_per_s", "auctions_per_cpu_s", "peak_rss_mib"):
            figures[key] = statistics.median(float(str(run[key])) for run in runs[level])
        figures["runs"] = [
            {k: run[k] for k in ("auctions_per_s", "auctions_per_cpu_s")} for run in runs[level]
        ]
        medians[level] = figures
        print(
            f"reference market, {figures['auctions']:,} auctions, log bids={level}, "
            f"median of {rounds}: {figures['auctions_per_s']:,.0f} auctions/s wall, "
            f"{figures['auctions_per_cpu_s']:,.0f} auctions per CPU-s, "
            f"peak RSS {figures['peak_rss_mib']} MiB, success {figures['success_rate']}, "
            f"fee/item {figures['fee_per_work']}, db {figures['db_mib']} MiB",
            flush=True,
        )
        print("  " + json.dumps(figures), flush=True)
    # The baseline is the same market without a bid log: the ratio is what logging costs.
    baseline = "none" if "none" in medians else levels[0]
    result = []
    for level in levels:
        for clock, key in (("wall", "auctions_per_s"), ("CPU", "auctions_per_cpu_s")):
            result.append(
                Figure(
                    "bench_sim",
                    f"reference market, log bids={level} ({clock})",
                    float(str(medians[level][key])),
                    "auctions/s",
                    f"log bids={baseline} ({clock})",
                    float(str(medians[baseline][key])),
                    rounds,
                    WITH_LOG_TARGET if level == "winners" else None,  # the issue asks it of winners
                )
            )
    return result + _against_mesa(rounds)


# The whole `aex sim` command against an idiomatic Mesa 3 model of the same market
# (bench/mesa_reference.py), each a fresh process timed start to exit, interleaved rounds.
# Mesa runs fewer ticks (it is two orders of magnitude slower); both at sizes where their
# start-up (imports, numba's cache, DuckDB) is a small part of the wall time.
VS_MESA_TICKS = int(os.environ.get("AEX_BENCH_SIM_VS_MESA_TICKS", "10000"))
MESA_TICKS = int(os.environ.get("AEX_BENCH_MESA_TICKS", "300"))
VS_MESA_TARGET = 100.0  # issue 14: >= 100x Mesa


def _timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def _against_mesa(rounds: int) -> list[Figure]:
    import duckdb

    try:
        import mesa  # noqa: F401
    except ImportError:
        print("aex sim vs Mesa: mesa is not installed (make install): skipped, no figure")
        return []
    aex_rates, mesa_rates, mesa_loop = [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "vs-mesa.duckdb")
            command = [sys.executable, "-m", "aex.cli", "sim", str(SCENARIO), "--out", out]
            command += ["--ticks", str(VS_MESA_TICKS), "--log-bids", "winners", "--no-progress"]
            wall_s, _ = _timed(command)
            with duckdb.connect(out, read_only=True) as con:
                row = con.execute("SELECT count(*) FROM awards").fetchone()
            auctions = int(row[0]) if row else 0
        aex_rates.append(auctions / wall_s)
        mesa_wall_s, printed = _timed(
            [sys.executable, "-m", "bench.mesa_reference", str(MESA_TICKS)]
        )
        model = json.loads(printed.strip().splitlines()[-1])
        mesa_rates.append(model["auctions"] / mesa_wall_s)
        mesa_loop.append(float(model["auctions_per_s"]))
    aex_rate, mesa_rate = statistics.median(aex_rates), statistics.median(mesa_rates)
    print(
        f"aex sim vs Mesa 3, whole commands, median of {rounds}: aex sim {VS_MESA_TICKS:,} ticks"
        f" {aex_rate:,.0f} auctions/s, Mesa {MESA_TICKS:,} ticks {mesa_rate:,.0f} auctions/s"
        f" ({statistics.median(mesa_loop):,.0f} in its loop alone): {aex_rate / mesa_rate:.1f}x",
        flush=True,
    )
    return [
        Figure(
            "bench_sim",
            "aex sim, log winners, whole command",
            aex_rate,
            "auctions/s",
            "Mesa 3 model of the same market, whole command",
            mesa_rate,
            rounds,
            VS_MESA_TARGET,
        )
    ]


if __name__ == "__main__":
    for figure in main():
        print(figure.line())
