"""bench/bench_costs.py: the slope fit and its classes on synthetic series, and every curve's
functions at tiny sizes (a few seconds; nothing here is timed against a threshold)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench import bench_costs
from bench.bench_costs import Curve, classify, geometric, growth_slope

SIZES = [10, 100, 1_000, 10_000, 100_000, 1_000_000]


def test_a_flat_series_is_flat_even_with_noise() -> None:
    noise = np.random.default_rng(7).uniform(0.9, 1.1, len(SIZES))
    slope = growth_slope(SIZES, list(2.0 * noise))
    assert abs(slope) < 0.05
    assert classify(slope) == "flat"


def test_a_log_series_is_log_like() -> None:
    slope = growth_slope(SIZES, [math.log(n) for n in SIZES])
    assert 0.1 <= slope < 0.3
    assert classify(slope) == "log-like"


def test_a_linear_series_is_a_finding() -> None:
    slope = growth_slope(SIZES, [3e-3 * n for n in SIZES])
    assert slope == pytest.approx(1.0)
    assert classify(slope) == "faster"
    assert classify(growth_slope(SIZES, [math.sqrt(n) for n in SIZES])) == "faster"
    # n log n is faster too, and a shrinking cost (warm caches) is flat
    assert classify(growth_slope(SIZES, [n * math.log(n) for n in SIZES])) == "faster"
    assert classify(growth_slope(SIZES, [1 / n for n in SIZES])) == "flat"


def test_the_thresholds_are_the_documented_ones() -> None:
    assert [classify(s) for s in (0.0, 0.099, 0.1, 0.299, 0.3, 2.0)] == [
        "flat",
        "flat",
        "log-like",
        "log-like",
        "faster",
        "faster",
    ]


def test_geometric_sizes_stop_at_the_cap() -> None:
    assert geometric(10, 10_000, 1_000_000) == [10, 100, 1_000, 10_000]
    assert geometric(1_000, 1_000_000, 100_000) == [1_000, 10_000, 100_000]
    assert geometric(10, 100_000, 5_000) == [10, 100, 1_000, 5_000]
    assert geometric(100, 100_000, 50) == []


def test_a_curve_fits_its_own_points_and_reports_them() -> None:
    curve = Curve("x/y", "n", "ms")
    for n in (10, 100, 1_000):
        curve.add(n, 0.5 * n, 0.7 * n, 0.4)
    assert curve.slope == pytest.approx(1.0)
    assert curve.slope_cpu == pytest.approx(0.0, abs=1e-9)
    # The verdict is of the CPU slope where there is one (wall time moves with the load)...
    assert curve.verdict == "flat"
    # ... else of the p50's.
    wall_only = Curve("x/z", "n", "ms", sizes=[10, 100, 1_000], p50=[1.0, 10.0, 100.0])
    assert wall_only.verdict == "faster"
    document = wall_only.to_json()
    assert document["class"] == "faster"
    assert document["sizes"] == [10, 100, 1_000]
    assert "x/y" in bench_costs.table([curve, wall_only])


def test_the_curves_run_at_tiny_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEX_BENCH_COSTS_REQUESTS", "10")
    monkeypatch.setenv("AEX_BENCH_COSTS_SIM_TICKS", "3")
    curves = bench_costs.store_curves("sqlite", [20, 200], rounds=3)
    assert [c.name for c in curves] == [f"store/sqlite/{op}" for op in bench_costs.STORE_OPS]
    assert all(c.sizes == [20, 200] and len(c.p99) == 2 and len(c.cpu) == 2 for c in curves)
    assert all(p99 >= p50 > 0 for c in curves for p50, p99 in zip(c.p50, c.p99, strict=True))
    curves += bench_costs.close_and_submit_curves("sqlite", [3, 30], [3, 30], rounds=3)
    names = [c.name for c in curves[-3:]]
    assert names == ["close/sqlite", "close/sqlite/per bid", "submit/sqlite"]
    curves += bench_costs.sim_curves([100, 1_000], rounds=3)
    assert all(not math.isnan(c.slope) for c in curves)
    bench_costs.write_outputs(curves, tmp_path / "costs.json", tmp_path / "img")
    written = json.loads((tmp_path / "costs.json").read_text())
    assert {c["name"] for c in written["curves"]} == {c.name for c in curves}
    plots = sorted(p.name for p in (tmp_path / "img").glob("cost-*.svg"))
    assert "cost-store-sqlite.svg" in plots
    assert "cost-sim.svg" in plots
    assert (tmp_path / "img" / "cost-close.svg").read_text().lstrip().startswith("<svg")
    figures = bench_costs.figures(curves)
    assert len(figures) == len(curves)
    assert all(f.rounds == 3 for f in figures)
