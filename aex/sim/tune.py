"""Weight tuning: search the weight simplex for the weights that serve the market best.

Objective (higher is better), per posted work item in major units, averaged over every
(scenario, seed) pair: consumer surplus − max over attacker strategies of max(0, that
strategy's profit), each strategy its own constraint (no sum before the max: one profitable
strategy cannot hide behind another's losses). Consumers value finished work at its budget and
pay nothing for failures, so the surplus rewards both low prices and successful providers.

Incentive constraint (`incentive_strategies`): the objective then also subtracts
`incentive_penalty` × max(0, max over those strategies of the upper 95% bound of the deviation
gain, USD per provider; aex/sim/incentives.py), computed at the candidate weights on the same
seeds. Again the max is over strategies, each bound computed on its own.

Re-adaptation: every evaluation at a candidate weight vector is a fresh market run under those
weights, so the adaptive bidders in it (the EXP3 `bandit`, `learning`) learn their markup and
stated confidence under the candidate's scoring rule from scratch; nothing learnt under other
weights is carried over. The check runs of the tuned weights and of the baseline preset are
fresh runs too, so the reported gain is against bidders that re-adapted to each.

Search: scipy.optimize.differential_evolution over x ∈ [0, 1]^6, mapped onto the simplex by
w = x / Σx. Every candidate is scored on the same seeds (common random numbers), so the
optimiser compares weights, not luck. Candidates are scored in parallel through an executor
(sweep.py), given to scipy as `workers=`. The chosen weights and the spec's balanced preset
are then re-scored on fresh seeds and reported with 95% confidence intervals, including the
paired difference (same seeds for both). `progress(n)` hears of every finished candidate
evaluation (`candidates(maxiter, popsize)` in all, fewer when the search converges early),
`check_progress(n)` of every finished check run (`check_runs(...)`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from aex.sim import _core, incentives, strategies
from aex.sim.runner import with_weights
from aex.sim.scenario import ScenarioParams
from aex.sim.sweep import Executor, ProgressExecutor, SerialExecutor, SweepTask, evaluate

__all__ = [
    "WEIGHT_FIELDS",
    "Estimate",
    "Objective",
    "TuneResult",
    "candidates",
    "check_runs",
    "estimate",
    "objective_of",
    "tune",
    "weights_from_vector",
]

WEIGHT_FIELDS = ("price", "trust", "confidence", "sample_work", "sla", "certification")


def weights_from_vector(x: npt.ArrayLike) -> _core.Weights:
    """Maps any non-negative vector onto the simplex (uniform when it is all zeros)."""
    values = np.clip(np.asarray(x, dtype=np.float64), 0.0, None)
    total = float(values.sum())
    values = values / total if total > 0 else np.full(len(WEIGHT_FIELDS), 1 / len(WEIGHT_FIELDS))
    made = _core.make_weights(dict(zip(WEIGHT_FIELDS, (float(v) for v in values), strict=True)))
    assert isinstance(made, _core.Weights), made
    return made


def objective_of(summary: dict[str, Any]) -> float:
    """Consumer surplus − the largest positive profit of any one attacker strategy, per posted
    work item, in major units."""
    work = max(int(summary["work_items"]), 1)
    attacker = max(
        [
            max(int(summary.get(f"profit_{name}_minor", 0) or 0), 0)
            for name in strategies.ATTACKER_STRATEGIES
        ],
        default=0,
    )
    return (int(summary["consumer_surplus_minor"]) - attacker) / work / 100


@dataclass(frozen=True, slots=True)
class Objective:
    """Picklable objective: mean objective of one weight vector over scenarios × seeds."""

    scenarios: tuple[ScenarioParams, ...]
    seeds: tuple[int, ...]
    incentive_strategies: tuple[str, ...] = ()
    deviators: int = incentives.DEVIATORS_DEFAULT
    incentive_penalty: float = 1.0

    def incentive_constraint(self, weights: _core.Weights) -> float:
        """max(0, the largest upper CI bound of any one strategy's deviation gain) over the
        scenarios, at these weights (adaptive bidders learning under them); 0 without
        incentive strategies."""
        if not self.incentive_strategies:
            return 0.0
        worst = 0.0
        for scenario in self.scenarios:
            gains = incentives.deviation_gains(
                with_weights(scenario, weights),
                self.incentive_strategies,
                self.seeds,
                deviators=self.deviators,
            )
            worst = max(worst, incentives.worst_upper_bound(gains))
        return worst

    def tasks(self, weights: _core.Weights) -> list[SweepTask]:
        return [
            SweepTask(dataclasses.replace(with_weights(s, weights), seed=seed))
            for s in self.scenarios
            for seed in self.seeds
        ]

    def values(self, weights: _core.Weights) -> list[float]:
        return [objective_of(evaluate(task)) for task in self.tasks(weights)]

    def __call__(self, x: npt.NDArray[np.float64]) -> float:
        # scipy minimises
        weights = weights_from_vector(x)
        penalty = self.incentive_penalty * self.incentive_constraint(weights)
        return -(float(np.mean(self.values(weights))) - penalty)


@dataclass(frozen=True, slots=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int


def estimate(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean with a Student-t confidence interval."""
    data = np.asarray(values, dtype=np.float64)
    n = data.size
    mean = float(data.mean())
    if n < 2:
        return Estimate(mean, mean, mean, n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(data.std(ddof=1)) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


def candidates(maxiter: int, popsize: int) -> int:
    """Candidate evaluations of a full search: scipy's population (popsize × the weights) for
    the initial generation and each of maxiter more."""
    return popsize * len(WEIGHT_FIELDS) * (maxiter + 1)


def check_runs(scenarios: int, check_seeds: int) -> int:
    """Runs that check the tuned weights and the baseline: scenarios × seeds, twice."""
    return 2 * scenarios * check_seeds


@dataclass(frozen=True, slots=True)
class TuneResult:
    weights: _core.Weights
    tuned: Estimate  # objective of the tuned weights on fresh seeds
    baseline: Estimate  # objective of the spec's balanced preset on the same seeds
    difference: Estimate  # paired: tuned − baseline
    evaluations: int
    incentive_constraint: float | None = None  # the tuned weights' worst upper bound (check)
    # convergence: the population's best objective (higher is better, on the search seeds)
    # after each generation of the search; never falls (selection keeps the better vector)
    history: tuple[float, ...] = ()


def tune(
    scenarios: Sequence[ScenarioParams],
    *,
    seeds: Sequence[int],
    check_seeds: Sequence[int],
    maxiter: int = 5,
    popsize: int = 4,
    rng_seed: int = 0,
    executor: Executor | None = None,
    baseline: str = "balanced",
    incentive_strategies: Sequence[str] = (),
    deviators: int = incentives.DEVIATORS_DEFAULT,
    progress: Callable[[int], object] | None = None,
    check_progress: Callable[[int], object] | None = None,
) -> TuneResult:
    """Searches the weight simplex with differential evolution; see the module docstring."""
    objective = Objective(
        tuple(scenarios), tuple(seeds), tuple(incentive_strategies), deviators=deviators
    )
    workers: Any = executor if executor is not None else SerialExecutor()
    history: list[float] = []

    def record(intermediate_result: optimize.OptimizeResult) -> None:
        # scipy passes the OptimizeResult to a callback with this parameter name
        history.append(-float(intermediate_result.fun))

    found = optimize.differential_evolution(
        objective,
        bounds=[(0.0, 1.0)] * len(WEIGHT_FIELDS),
        maxiter=maxiter,
        popsize=popsize,
        seed=rng_seed,
        polish=False,
        updating="deferred",
        workers=workers if progress is None else ProgressExecutor(workers, progress),
        callback=record,
    )
    weights = weights_from_vector(found.x)
    check = Objective(
        tuple(scenarios), tuple(check_seeds), tuple(incentive_strategies), deviators=deviators
    )
    checking = workers if check_progress is None else ProgressExecutor(workers, check_progress)
    tuned_values = [objective_of(r) for r in checking(evaluate, check.tasks(weights))]
    baseline_tasks = check.tasks(_core.PRESETS[baseline])
    baseline_values = [objective_of(r) for r in checking(evaluate, baseline_tasks)]
    paired = [a - b for a, b in zip(tuned_values, baseline_values, strict=True)]
    return TuneResult(
        weights=weights,
        tuned=estimate(tuned_values),
        baseline=estimate(baseline_values),
        difference=estimate(paired),
        evaluations=int(found.nfev),
        incentive_constraint=(
            check.incentive_constraint(weights) if incentive_strategies else None
        ),
        history=tuple(history),
    )
