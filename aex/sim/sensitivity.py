"""Global sensitivity of market welfare to scenario parameters (SALib: Morris and Sobol).

A parameter is a dotted path into ScenarioParams with bounds (`market.budget_max_major`,
`providers[0].markup_max`, `scoring.fee_bps`) or a derived parameter (`attacker_share`: the
share of providers in attacker groups, the total kept). `with_parameter` rebuilds the frozen
dataclasses down the path (int fields rounded) and refuses a path that names no numeric field.

Measures (`welfare_of`, one run's summary from sweep.evaluate, major units):

- total_welfare_per_work: (consumer surplus + provider profit + platform fees) / work posted
  (the market log's welfare row, per posted work item)
- consumer_surplus_per_work: Σ over successful work of (budget − price) / work posted
- honest_profit_per_provider: the mean realised profit of an honest provider slot
- fee_per_work: the platform's fee revenue / work posted

Common random numbers: every sample point is run on the same seeds, and a point's value is the
mean over those seeds, so two points differ by their parameters, not by their luck (a parameter
that changes nothing gets elementary effects of exactly 0). Points run through an executor
(sweep.py: SerialExecutor by default, ProcessExecutor for a local pool).

Morris (the screening method): `trajectories` one-at-a-time paths through a `levels`-level grid
of the parameter box. An elementary effect is the change of a measure over one step divided by
the step as a fraction of the parameter's range, so mu_star (the mean absolute effect) reads as
"how much the measure moves when the parameter crosses its range", comparable across
parameters; mu_star_conf is the half-width of its bootstrap confidence interval, mu the signed
mean (the direction) and sigma the spread of the effects (non-linearity or interactions).
Sobol (the deeper option): Saltelli's sampling with N base samples (a power of two), N(k + 2)
points; S1 is the share of the measure's variance due to the parameter alone, ST the share
including its interactions, each with its bootstrap confidence half-width. Both are
deterministic for a given sampler seed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from aex.sim import strategies
from aex.sim.scenario import (
    SCENARIO_DIR,
    ProviderGroup,
    ScenarioError,
    ScenarioParams,
    validate_scenario,
)
from aex.sim.sweep import Executor, SerialExecutor, SweepTask, evaluate

__all__ = [
    "DEFAULT_PARAMETERS",
    "DERIVED_PARAMETERS",
    "MEASURES",
    "METHODS",
    "Parameter",
    "ParameterError",
    "ParameterSet",
    "SensitivityResult",
    "get_parameter",
    "load_parameters",
    "morris",
    "sobol",
    "welfare_of",
    "with_parameter",
    "with_parameters",
]

MEASURES = (
    "total_welfare_per_work",
    "consumer_surplus_per_work",
    "honest_profit_per_provider",
    "fee_per_work",
)
METHODS = ("morris", "sobol")
DEFAULT_PARAMETERS = SCENARIO_DIR / "sensitivity.toml"
CONFIDENCE_DEFAULT = 0.95
RESAMPLES_DEFAULT = 1_000


class ParameterError(ScenarioError):
    """A parameter path or value that cannot be applied; the message starts with the path."""


@dataclass(frozen=True, slots=True)
class Parameter:
    """One varied parameter: a dotted path (or a derived name) and its bounds."""

    path: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class ParameterSet:
    """A parameter file: the base scenario's name (or path) and the varied parameters."""

    scenario: str
    parameters: tuple[Parameter, ...]


# ---- parameters: dotted paths into the frozen scenario ----

_SEGMENT = re.compile(r"([A-Za-z_]\w*)(?:\[(\d+)\])?")


def _segments(path: str) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for part in path.split("."):
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise ParameterError(
                f"{path}: not a dotted path (e.g. market.budget_max_major, providers[0]."
                f"markup_max) nor a derived parameter ({', '.join(DERIVED_PARAMETERS)})"
            )
        index = match.group(2)
        out.append((match.group(1), None if index is None else int(index)))
    return out


def _at(
    obj: Any,
    segments: list[tuple[str, int | None]],
    path: str,
    done: str,
    value: float | None,
) -> Any:
    """Reads (value None) or replaces the numeric field at `segments` below the dataclass
    `obj`; returns the value read or the rebuilt `obj`."""
    name, index = segments[0]
    here = f"{done}.{name}" if done else name
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if name not in fields:
        known = ", ".join(fields)
        raise ParameterError(f"{path}: {here} is not a field; known fields there: {known}")
    current = getattr(obj, name)
    rest = segments[1:]
    if index is not None:
        if not isinstance(current, tuple):
            raise ParameterError(f"{path}: {here} is not a list; drop the [{index}]")
        if index >= len(current):
            raise ParameterError(f"{path}: {here} has {len(current)} entries, no [{index}]")
        if not rest:
            raise ParameterError(f"{path}: {here}[{index}] is a table; name one of its fields")
        inner = _at(current[index], rest, path, f"{here}[{index}]", value)
        if value is None:
            return inner
        items = (*current[:index], inner, *current[index + 1 :])
        return dataclasses.replace(obj, **{name: items})
    if isinstance(current, tuple):
        raise ParameterError(f"{path}: {here} is a list; pick one entry, e.g. {here}[0]")
    if dataclasses.is_dataclass(current):
        if not rest:
            raise ParameterError(f"{path}: {here} is a table; name one of its fields")
        inner = _at(current, rest, path, here, value)
        return inner if value is None else dataclasses.replace(obj, **{name: inner})
    if rest:
        raise ParameterError(f"{path}: {here} is a {type(current).__name__}; it has no fields")
    return _leaf(obj, fields[name], path, here, value)


def _leaf(
    obj: Any, field: dataclasses.Field[Any], path: str, here: str, value: float | None
) -> Any:
    kind = str(field.type)
    if kind not in ("int", "float"):
        raise ParameterError(f"{path}: {here} is not a number ({kind}); only int and float vary")
    if value is None:
        return float(getattr(obj, field.name))
    new: int | float = round(value) if kind == "int" else float(value)
    return dataclasses.replace(obj, **{field.name: new})


def _attacker_groups(params: ScenarioParams) -> tuple[list[int], list[int]]:
    attackers = [
        i for i, g in enumerate(params.providers) if g.strategy in strategies.ATTACKER_STRATEGIES
    ]
    others = [i for i in range(len(params.providers)) if i not in attackers]
    return attackers, others


def _attacker_share(params: ScenarioParams) -> float:
    attackers, _ = _attacker_groups(params)
    return sum(params.providers[i].count for i in attackers) / params.provider_count


def _apportion(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainders, exact integer arithmetic;
    ties to the earlier group)."""
    whole = sum(weights)
    floors = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[: total - sum(floors)]:
        floors[i] += 1
    return floors


def _with_attacker_share(params: ScenarioParams, share: float) -> ScenarioParams:
    """The attacker groups resized to `share` of all providers, the other groups to the rest
    (the total and each side's proportions kept); a group left with no provider is dropped."""
    attackers, others = _attacker_groups(params)
    if not attackers or not others:
        raise ParameterError(
            "attacker_share: needs both attacker groups "
            f"({', '.join(strategies.ATTACKER_STRATEGIES)}) and other groups in the scenario"
        )
    if not 0 <= share < 1:
        raise ParameterError(f"attacker_share: {share!r} is not in [0, 1)")
    total = params.provider_count
    target = min(round(share * total), total - 1)
    counts = [g.count for g in params.providers]
    sizes = dict(zip(attackers, _apportion(target, [counts[i] for i in attackers]), strict=True))
    rest = _apportion(total - target, [counts[i] for i in others])
    sizes.update(zip(others, rest, strict=True))
    groups: list[ProviderGroup] = [
        dataclasses.replace(g, count=sizes[i]) for i, g in enumerate(params.providers) if sizes[i]
    ]
    return dataclasses.replace(params, providers=tuple(groups))


# Derived parameters: (read, write); written after every path parameter (with_parameters).
DERIVED_PARAMETERS: Mapping[
    str,
    tuple[Callable[[ScenarioParams], float], Callable[[ScenarioParams, float], ScenarioParams]],
] = {"attacker_share": (_attacker_share, _with_attacker_share)}


def get_parameter(params: ScenarioParams, path: str) -> float:
    """The current value of a parameter (a dotted path or a derived name)."""
    if path in DERIVED_PARAMETERS:
        return DERIVED_PARAMETERS[path][0](params)
    return float(_at(params, _segments(path), path, "", None))


def with_parameter(
    params: ScenarioParams, path: str, value: float, *, validate: bool = True
) -> ScenarioParams:
    """`params` with the numeric field at `path` set to `value` (rounded for an int field),
    the frozen dataclasses rebuilt down the path; raises ParameterError naming the path for an
    unknown or non-numeric path, and ScenarioError when the result is not a valid scenario
    (unless validate=False)."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise ParameterError(f"{path}: {value!r} is not a finite number")
    if path in DERIVED_PARAMETERS:
        made = DERIVED_PARAMETERS[path][1](params, value)
    else:
        made = _at(params, _segments(path), path, "", float(value))
    return validate_scenario(made) if validate else made


def with_parameters(params: ScenarioParams, values: Mapping[str, float]) -> ScenarioParams:
    """Every value applied (path parameters first, then derived ones), validated once at the
    end; a refused combination raises ParameterError listing the values."""
    ordered = sorted(values.items(), key=lambda kv: kv[0] in DERIVED_PARAMETERS)
    for path, value in ordered:
        params = with_parameter(params, path, value, validate=False)
    try:
        return validate_scenario(params)
    except ScenarioError as error:
        at = ", ".join(f"{p} = {v:g}" for p, v in values.items())
        raise ParameterError(f"{error} (at {at})") from None


def _check_parameters(base: ScenarioParams, parameters: Sequence[Parameter]) -> None:
    if not parameters:
        raise ParameterError("parameters: none given")
    seen: set[str] = set()
    for p in parameters:
        if p.path in seen:
            raise ParameterError(f"{p.path}: given twice")
        seen.add(p.path)
        if not (math.isfinite(p.low) and math.isfinite(p.high) and p.low < p.high):
            raise ParameterError(f"{p.path}: bounds [{p.low}, {p.high}] are not low < high")
        get_parameter(base, p.path)  # the path exists and is numeric


def load_parameters(path: str | Path = DEFAULT_PARAMETERS) -> ParameterSet:
    """Reads a parameter file: `scenario = NAME` and a `[parameters]` table of
    `"dotted.path" = [low, high]` (see scenarios/sensitivity.toml)."""
    with Path(path).open("rb") as handle:
        table = tomllib.load(handle)
    unknown = sorted(set(table) - {"scenario", "parameters"})
    if unknown:
        raise ParameterError(f"{unknown[0]}: unknown key in {path}; known: scenario, parameters")
    scenario = table.get("scenario", "default")
    if not isinstance(scenario, str):
        raise ParameterError(f"scenario: expected a scenario name or file, got {scenario!r}")
    bounds = table.get("parameters")
    if not isinstance(bounds, dict) or not bounds:
        raise ParameterError(f"parameters: {path} needs a [parameters] table of path = [lo, hi]")
    parameters = []
    for name, pair in bounds.items():
        ok = isinstance(pair, list) and len(pair) == 2
        if not ok or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair):
            raise ParameterError(f"{name}: expected [low, high], got {pair!r}")
        parameters.append(Parameter(name, float(pair[0]), float(pair[1])))
    return ParameterSet(scenario, tuple(parameters))


# ---- measures and evaluation ----


def welfare_of(summary: Mapping[str, Any]) -> dict[str, float]:
    """The welfare measures of one run's summary (sweep.evaluate), in major units."""
    work = int(summary["work_items"])
    honest = summary.get("honest_profit_per_provider_minor")
    honest_major = math.nan if honest is None else float(honest) / 100
    if work == 0:
        return {**dict.fromkeys(MEASURES, math.nan), "honest_profit_per_provider": honest_major}
    surplus = int(summary["consumer_surplus_minor"])
    fees = int(summary["fee_revenue_minor"])
    profit = sum(int(summary.get(f"profit_{n}_minor", 0) or 0) for n in strategies.NAMES)
    return {
        "total_welfare_per_work": (surplus + profit + fees) / work / 100,
        "consumer_surplus_per_work": surplus / work / 100,
        "honest_profit_per_provider": honest_major,
        "fee_per_work": fees / work / 100,
    }


def _evaluate(
    base: ScenarioParams,
    parameters: Sequence[Parameter],
    points: npt.NDArray[np.float64],
    seeds: Sequence[int],
    executor: Executor | None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Each measure at each point: the mean over `seeds` (the same seeds at every point)."""
    paths = [p.path for p in parameters]
    # every point built (and validated) before anything runs
    scenarios = [
        with_parameters(base, dict(zip(paths, map(float, row), strict=True))) for row in points
    ]
    tasks = [
        SweepTask(dataclasses.replace(s, seed=seed), label=str(i))
        for i, s in enumerate(scenarios)
        for seed in seeds
    ]
    summaries = (executor or SerialExecutor()).map(evaluate, tasks)
    values = np.array(
        [[welfare_of(s)[m] for m in MEASURES] for s in summaries], dtype=np.float64
    ).reshape(len(scenarios), len(seeds), len(MEASURES))
    means = values.mean(axis=1)
    return {m: np.ascontiguousarray(means[:, j]) for j, m in enumerate(MEASURES)}


def _problem(parameters: Sequence[Parameter]) -> dict[str, Any]:
    return {
        "num_vars": len(parameters),
        "names": [p.path for p in parameters],
        "bounds": [[p.low, p.high] for p in parameters],
    }


@dataclass(frozen=True, eq=False)
class SensitivityResult:
    """One analysis: the sampled points, each measure's per-point value (mean over seeds) and
    its indices (a polars frame per measure, one row per parameter)."""

    method: str
    scenario: str
    parameters: tuple[Parameter, ...]
    seeds: tuple[int, ...]
    ticks: int
    sampler_seed: int
    settings: Mapping[str, int | float]
    points: npt.NDArray[np.float64]
    outputs: Mapping[str, npt.NDArray[np.float64]]
    indices: Mapping[str, pl.DataFrame]

    @property
    def evaluations(self) -> int:
        return len(self.points) * len(self.seeds)

    def table(self) -> pl.DataFrame:
        """Every measure's indices in one long frame (a `measure` column first)."""
        return pl.concat(
            [f.select(pl.lit(m).alias("measure"), pl.all()) for m, f in self.indices.items()]
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (NaN as null)."""
        record: dict[str, Any] = _finite(
            {
                "method": self.method,
                "scenario": self.scenario,
                "parameters": [dataclasses.asdict(p) for p in self.parameters],
                "seeds": list(self.seeds),
                "ticks": self.ticks,
                "sampler_seed": self.sampler_seed,
                "settings": dict(self.settings),
                "evaluations": self.evaluations,
                "indices": {m: f.to_dicts() for m, f in self.indices.items()},
                "points": self.points.tolist(),
                "outputs": {m: v.tolist() for m, v in self.outputs.items()},
            }
        )
        return record


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def morris(
    base: ScenarioParams,
    parameters: Sequence[Parameter],
    *,
    seeds: Sequence[int],
    trajectories: int = 10,
    levels: int = 4,
    sampler_seed: int = 0,
    executor: Executor | None = None,
    resamples: int = RESAMPLES_DEFAULT,
    confidence: float = CONFIDENCE_DEFAULT,
) -> SensitivityResult:
    """Morris elementary effects of every measure: trajectories × (k + 1) points, each run on
    every seed. Indices per measure: parameter, mu_star, mu_star_conf, sigma, mu."""
    from SALib.analyze import morris as analyze
    from SALib.sample import morris as sample

    _check_parameters(base, parameters)
    if trajectories < 2 or levels < 2 or levels % 2:
        raise ValueError("morris: trajectories >= 2 and an even number of levels >= 2")
    problem = _problem(parameters)
    points = np.asarray(
        sample.sample(problem, trajectories, num_levels=levels, seed=sampler_seed), np.float64
    )
    outputs = _evaluate(base, parameters, points, seeds, executor)
    indices = {}
    for measure, values in outputs.items():
        si = analyze.analyze(
            problem,
            points,
            values,
            num_resamples=resamples,
            conf_level=confidence,
            num_levels=levels,
            seed=sampler_seed,
        )
        indices[measure] = pl.DataFrame(
            {
                "parameter": [p.path for p in parameters],
                "mu_star": np.asarray(si["mu_star"], np.float64),
                "mu_star_conf": np.asarray(si["mu_star_conf"], np.float64),
                "sigma": np.asarray(si["sigma"], np.float64),
                "mu": np.asarray(si["mu"], np.float64),
            }
        )
    return SensitivityResult(
        method="morris",
        scenario=base.name,
        parameters=tuple(parameters),
        seeds=tuple(seeds),
        ticks=base.ticks,
        sampler_seed=sampler_seed,
        settings={"trajectories": trajectories, "levels": levels, "confidence": confidence},
        points=points,
        outputs=outputs,
        indices=indices,
    )


def sobol(
    base: ScenarioParams,
    parameters: Sequence[Parameter],
    *,
    seeds: Sequence[int],
    samples: int = 64,
    sampler_seed: int = 0,
    executor: Executor | None = None,
    resamples: int = RESAMPLES_DEFAULT,
    confidence: float = CONFIDENCE_DEFAULT,
) -> SensitivityResult:
    """Sobol indices of every measure (first order and total, no second order): samples ×
    (k + 2) points, each run on every seed. Indices per measure: parameter, S1, S1_conf, ST,
    ST_conf."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    _check_parameters(base, parameters)
    if samples < 2 or samples & (samples - 1):
        raise ValueError(f"sobol: samples must be a power of two (got {samples})")
    problem = _problem(parameters)
    points = np.asarray(
        sample.sample(problem, samples, calc_second_order=False, seed=sampler_seed), np.float64
    )
    outputs = _evaluate(base, parameters, points, seeds, executor)
    indices = {}
    for measure, values in outputs.items():
        si = analyze.analyze(
            problem,
            values,
            calc_second_order=False,
            num_resamples=resamples,
            conf_level=confidence,
            seed=sampler_seed,
        )
        indices[measure] = pl.DataFrame(
            {
                "parameter": [p.path for p in parameters],
                "S1": np.asarray(si["S1"], np.float64),
                "S1_conf": np.asarray(si["S1_conf"], np.float64),
                "ST": np.asarray(si["ST"], np.float64),
                "ST_conf": np.asarray(si["ST_conf"], np.float64),
            }
        )
    return SensitivityResult(
        method="sobol",
        scenario=base.name,
        parameters=tuple(parameters),
        seeds=tuple(seeds),
        ticks=base.ticks,
        sampler_seed=sampler_seed,
        settings={"samples": samples, "confidence": confidence},
        points=points,
        outputs=outputs,
        indices=indices,
    )
