"""What every benchmark reports: figures, each a rate against its baseline in the same run.

A `Figure` is a rate (higher is better: bids/s, requests/s, verifies/s) and the rate of its
baseline measured in the same run, interleaved with it (one of each per round, so both see the
same machine load), as medians over `rounds` rounds. Its `ratio` is the share of the baseline
reached. `python -m bench` collects the figures of every bench it runs into a JSON summary
(bench/results/latest.json by default); `python -m bench --compare OLD.json NEW.json` flags
every figure whose ratio fell by more than a tolerance (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SUMMARY_VERSION = 1
MIN_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured rate and its baseline's rate, both medians of `rounds` interleaved rounds."""

    bench: str
    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    rounds: int
    target: float | None = None  # the ratio the issue asks for, if any

    @property
    def ratio(self) -> float:
        return self.value / self.baseline_value if self.baseline_value else float("nan")

    @property
    def key(self) -> str:
        return f"{self.bench}/{self.name}"

    def line(self) -> str:
        target = ""
        if self.target is not None:
            verdict = "meets" if self.ratio >= self.target else "MISSES"
            target = f"  ({verdict} target {self.target:.0%})"
        return (
            f"  {self.name:44} {self.value:14,.1f} {self.unit:12} {self.ratio:7.1%} of"
            f" {self.baseline} ({self.baseline_value:,.1f}), median of {self.rounds}{target}"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"ratio": self.ratio}


@dataclass(frozen=True, slots=True)
class Timing:
    """Medians over the rounds of one measure: wall seconds, CPU seconds, system CPU seconds."""

    wall_s: float
    cpu_s: float
    sys_s: float


def interleaved(runs: Mapping[str, Callable[[], object]], rounds: int) -> dict[str, Timing]:
    """Runs every measure once per round, in order, for `rounds` rounds; the medians of each.

    CPU = time.process_time of this process (user + system); under load (a shared machine)
    wall time includes waiting for a core, so CPU is the fairer figure.
    """
    assert rounds >= 1
    samples: dict[str, list[tuple[float, float, float]]] = {label: [] for label in runs}
    for _ in range(rounds):
        for label, run in runs.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
            cpu_started, started = time.process_time(), time.perf_counter()
            run()
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            system = resource.getrusage(resource.RUSAGE_SELF).ru_stime - before
            samples[label].append((wall, cpu, system))
    return {
        label: Timing(
            statistics.median(s[0] for s in values),
            statistics.median(s[1] for s in values),
            statistics.median(s[2] for s in values),
        )
        for label, values in samples.items()
    }


def rounds_from_env(default: int = MIN_ROUNDS) -> int:
    """AEX_BENCH_ROUNDS, at least MIN_ROUNDS (fewer would make a median meaningless)."""
    return max(MIN_ROUNDS, int(os.environ.get("AEX_BENCH_ROUNDS", str(default))))


def summary(figures: Iterable[Figure], benches: Iterable[str]) -> dict[str, Any]:
    """The JSON summary of one `python -m bench` run."""
    return {
        "version": SUMMARY_VERSION,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "benches": list(benches),
        "figures": {figure.key: figure.to_json() for figure in figures},
    }


def write_summary(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    old_ratio: float
    new_ratio: float

    @property
    def relative(self) -> float:
        return self.new_ratio / self.old_ratio - 1.0 if self.old_ratio else float("nan")


def compare(
    old: Mapping[str, Any], new: Mapping[str, Any], *, tolerance: float
) -> tuple[list[Change], list[Change], list[str]]:
    """(regressions, the other compared figures, keys in only one of the two summaries).

    A regression is a figure whose ratio to its baseline fell by more than `tolerance`
    (relative: 0.10 flags 50% -> 44%). Ratios, not raw rates, are compared: both sides of a
    ratio were measured under the same load, so a busier machine moves it much less.
    """
    old_figures, new_figures = old["figures"], new["figures"]
    regressions, others = [], []
    for key in sorted(set(old_figures) & set(new_figures)):
        change = Change(key, float(old_figures[key]["ratio"]), float(new_figures[key]["ratio"]))
        (regressions if change.relative < -tolerance else others).append(change)
    unmatched = sorted(set(old_figures) ^ set(new_figures))
    return regressions, others, unmatched
