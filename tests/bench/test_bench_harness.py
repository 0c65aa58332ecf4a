"""`python -m bench`: every bench module imports and is listed; summaries compare (not timed)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS, main, select, short_name
from bench.harness import Figure, compare, summary, write_summary

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", BENCHMARKS)
def test_each_bench_module_imports_and_has_a_main_taking_arguments(module: str) -> None:
    bench = importlib.import_module(module)
    assert callable(bench.main)
    assert "argv" in bench.main.__code__.co_varnames[: bench.main.__code__.co_argcount]


def test_python_m_bench_list_lists_every_bench() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.split() == [short_name(module) for module in BENCHMARKS]


def test_a_selector_names_a_bench_with_or_without_its_prefix() -> None:
    assert select(["bench_sim"]) == ["bench.bench_sim"]
    assert select(["sim", "scoring"]) == ["bench.bench_scoring", "bench.bench_sim"]
    assert select([]) == list(BENCHMARKS)
    with pytest.raises(SystemExit):
        select(["nonexistent"])


def test_the_sim_bench_reads_no_tick_count_from_the_selector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `python -m bench bench_sim` once crashed: bench_sim read sys.argv ("bench_sim") as ticks.
    import bench.bench_sim as bench_sim

    calls: list[tuple[int, str]] = []

    def fake_run(ticks: int, level: str) -> dict[str, object]:
        calls.append((ticks, level))
        figures: dict[str, object] = {"auctions": 10, "success_rate": 1.0, "fee_per_work": 0.1}
        rates = {"none": 100.0, "winners": 90.0, "all": 50.0}[level]
        keys = ("wall_s", "cpu_s", "auctions_per_s", "auctions_per_cpu_s", "peak_rss_mib")
        return figures | dict.fromkeys(keys, rates) | {"db_mib": 1.0}

    monkeypatch.setattr(bench_sim, "_run", fake_run)
    monkeypatch.setattr(sys, "argv", ["python -m bench", "bench_sim"])
    figures = bench_sim.main([])
    assert {ticks for ticks, _ in calls} == {2000}
    assert len(calls) == 3 * len(bench_sim.LEVELS)  # at least three interleaved rounds
    ratios = {figure.name: figure.ratio for figure in figures}
    assert ratios["reference market, log bids=winners (wall)"] == pytest.approx(0.9)


def figure(name: str, value: float, baseline: float) -> Figure:
    return Figure("bench_x", name, value, "/s", "floor", baseline, 3)


def test_compare_flags_a_ratio_that_fell_beyond_the_tolerance(tmp_path: Path) -> None:
    old = summary([figure("a", 50, 100), figure("b", 30, 100), figure("gone", 1, 1)], ["x"])
    # a: 50% -> 44% (a 12% drop); b: 30% -> 28.5% (5%, within 10%); raw rates do not matter.
    new = summary([figure("a", 88, 200), figure("b", 57, 200), figure("new", 1, 1)], ["x"])
    regressions, others, unmatched = compare(old, new, tolerance=0.10)
    assert [change.key for change in regressions] == ["bench_x/a"]
    assert [change.key for change in others] == ["bench_x/b"]
    assert unmatched == ["bench_x/gone", "bench_x/new"]
    write_summary(tmp_path / "old.json", old)
    write_summary(tmp_path / "new.json", new)
    assert json.loads((tmp_path / "new.json").read_text())["figures"]["bench_x/a"]["ratio"] == 0.44
    paths = [str(tmp_path / "old.json"), str(tmp_path / "new.json")]
    assert main(["--compare", *paths]) == 1
    assert main(["--compare", *paths, "--tolerance", "0.2"]) == 0
