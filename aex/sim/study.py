"""The market-design study: which rules should the exchange run? (docs/market-design.md "Study")

One pipeline, every number with its 95% interval, every choice made on data the evaluation
never sees:

1. **Tune** the weights (tune.py, differential evolution, common random numbers) on the
   *train* scenarios and *train* seeds, under the study's confidence calibration.
2. **Bootstrap** the tuned weights' stability: re-tune on `bootstrap` resamples (with
   replacement) of a pool of train seeds; report each weight's mean, sd and 2.5–97.5%
   percentiles.
3. **Choose** among the candidate rules (the spec's defaults, the spec with calibration,
   simple baselines, the tuned weights with and without calibration, and any second scoring
   rule the core offers) on the *train* scenarios only: the highest mean objective among the
   candidates whose every adversary's deviation gain has an upper 95% bound ≤ 0 there (when
   none qualifies: the one with the smallest worst bound). Every candidate's train gains and
   its binding constraint (the scenario and strategy with the largest bound) are recorded.
4. **Evaluate** every candidate on the *held-out* scenarios and seeds: the objective, total
   welfare and honest providers' profit per provider, each candidate's paired difference
   from the spec's defaults (same seeds: common random numbers) with its interval.
5. **Incentive test** of the chosen rules and of the spec's defaults on the held-out
   scenarios: every strategy's deviation gain with its interval (incentives.py).
6. **Break-even**: honest providers' profit per provider per run under the chosen rules on
   the held-out scenarios, with its interval over seeds.
7. **Confirmation**, a sequential step declared here, before any run: every held-out
   adversary constraint of the chosen rules whose upper bound step 5 left above 0 is
   measured again on `confirm_seeds`, fresh seeds disjoint from every other list; the held-out
   bar is met when every constraint clears 0 in step 5 or in its confirmation. (Two chances
   at a 95% bound: a constraint whose gain is really ≥ 0 passes with probability below 5%.)

The result is a JSON-serialisable dict (`aex study` writes it, and the chosen rules as the
rules file that `aex serve --weights` loads). The simulator has no formula of its own here:
every candidate is an `ExchangeRules` document read by the core (aex/core/rules.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aex.sim import _core, incentives, sensitivity, strategies, tune
from aex.sim.runner import with_rules
from aex.sim.scenario import ScenarioParams, load_scenario
from aex.sim.sweep import Executor, SerialExecutor, SweepTask, evaluate

__all__ = [
    "Candidate",
    "StudyParams",
    "candidate_rules",
    "compare",
    "confirm_open_constraints",
    "evaluate_rules",
    "load_study",
    "run_study",
]

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class StudyParams:
    """What the study runs (scenarios/study.toml; every size can be overridden)."""

    train: tuple[str, ...] = ("default", "attacks")
    test: tuple[str, ...] = ("heldout_specialists", "heldout_thin", "heldout_premium")
    ticks: int = 100
    train_seeds: tuple[int, ...] = (1, 2, 3)
    check_seeds: tuple[int, ...] = tuple(range(101, 111))  # train scenarios, fresh seeds
    test_seeds: tuple[int, ...] = tuple(range(20_001, 20_011))
    incentive_seeds: tuple[int, ...] = tuple(range(30_001, 30_021))
    # The confirmation run (step 7): fresh seeds for the held-out constraints left open.
    confirm_seeds: tuple[int, ...] = tuple(range(60_001, 60_101))
    tune_maxiter: int = 5
    tune_popsize: int = 4
    bootstrap: int = 4
    bootstrap_pool: tuple[int, ...] = tuple(range(1, 9))
    deviators: int = incentives.DEVIATORS_DEFAULT
    calibration: Mapping[str, float] = field(
        default_factory=lambda: {"evidence_contracts": 3.0, "prior_alpha": 1.0, "prior_beta": 1.0}
    )
    extra_rules: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


def load_study(path: str) -> StudyParams:
    """Reads a study file (TOML); unknown keys are refused by name."""
    import tomllib

    with open(path, "rb") as handle:
        table = tomllib.load(handle)
    known = {f.name for f in dataclasses.fields(StudyParams)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"{path}: {unknown[0]}: unknown key; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for name, value in table.items():
        if name.endswith("seeds") and isinstance(value, Mapping):
            value = _seed_range(path, name, value)
        values[name] = tuple(value) if isinstance(value, list) else value
    return StudyParams(**values)


def _seed_range(path: str, name: str, table: Mapping[str, object]) -> tuple[int, ...]:
    """`{ first = F, count = N }`: the seeds F, F + 1, ..., F + N - 1."""
    if set(table) != {"first", "count"}:
        raise ValueError(f"{path}: {name}: expected a list or {{ first = F, count = N }}")
    first, count = table["first"], table["count"]
    if not isinstance(first, int) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{path}: {name}: first and count must be integers, count >= 1")
    return tuple(range(first, first + count))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One set of exchange rules under study: a name and its rules document."""

    name: str
    document: Mapping[str, object]


def _document(weights: _core.Weights, name: str, **extra: object) -> dict[str, object]:
    document = _core.weights_to_json(weights, name=name)
    document.update(extra)
    made = _core.rules_from_json(document)
    assert isinstance(made, _core.ExchangeRules), made
    return document


def _renormalised(values: Mapping[str, float]) -> _core.Weights:
    return tune.weights_from_vector([values.get(f, 0.0) for f in tune.WEIGHT_FIELDS])


def candidate_rules(study: StudyParams, tuned: _core.Weights | None) -> list[Candidate]:
    """The rules the study compares: the spec first (the reference of every paired
    difference), then calibration, simple baselines, the tuned weights, any extras."""
    balanced = _core.PRESETS["balanced"]
    calibration = dict(study.calibration)
    found = [
        Candidate("spec", _document(balanced, "spec")),
        Candidate(
            "spec+calibration",
            _document(balanced, "spec+calibration", confidence_calibration=calibration),
        ),
        # Simple baselines: the spec's weights with the components a buyer cannot verify
        # (stated confidence, the self-reported sample) taken out, and price + trust alone.
        Candidate(
            "verifiable_only",
            _document(
                _renormalised({"price": 0.25, "trust": 0.25, "sla": 0.10, "certification": 0.15}),
                "verifiable_only",
            ),
        ),
        Candidate("price_trust", _document(_renormalised({"price": 1, "trust": 1}), "price_trust")),
    ]
    if tuned is not None:
        found.append(Candidate("tuned", _document(tuned, "tuned")))
        found.append(
            Candidate(
                "tuned+calibration",
                _document(tuned, "tuned+calibration", confidence_calibration=calibration),
            )
        )
    for name, extra in study.extra_rules.items():
        document = dict(extra)
        if "weights" not in document:
            document["weights"] = _core.weights_to_json(balanced)["weights"]
        document["name"] = name
        made = _core.rules_from_json(document)
        if not isinstance(made, _core.ExchangeRules):
            raise ValueError(f"extra_rules.{name}: {made.field}: {made.detail}")
        found.append(Candidate(name, document))
    return found


def _seeded(scenarios: Sequence[ScenarioParams], seeds: Sequence[int]) -> list[ScenarioParams]:
    return [dataclasses.replace(s, seed=int(seed)) for s in scenarios for seed in seeds]


def evaluate_rules(
    scenarios: Sequence[ScenarioParams],
    seeds: Sequence[int],
    candidates: Sequence[Candidate],
    executor: Executor,
) -> dict[str, list[dict[str, Any]]]:
    """Runs every candidate on every (scenario, seed); per candidate, one row per pair."""
    tasks = [
        SweepTask(with_rules(p, c.document), label=c.name)
        for c in candidates
        for p in _seeded(scenarios, seeds)
    ]
    summaries = executor.map(evaluate, tasks)
    rows: dict[str, list[dict[str, Any]]] = {c.name: [] for c in candidates}
    for summary in summaries:
        rows[summary["label"]].append(
            {
                "scenario": summary["scenario"],
                "seed": int(summary["seed"]),
                "objective": tune.objective_of(summary),
                "welfare": sensitivity.welfare_of(summary)["total_welfare_per_work"],
                "honest_profit": float(summary["honest_profit_per_provider_minor"]) / 100,
            }
        )
    return rows


def _interval(values: Sequence[float]) -> dict[str, float]:
    e = tune.estimate(values)
    return {"mean": e.mean, "ci_low": e.low, "ci_high": e.high, "n": e.n}


def compare(
    rows: Mapping[str, list[dict[str, Any]]], reference: str, scenarios: Sequence[str]
) -> list[dict[str, Any]]:
    """Per candidate and scenario (and 'all': the paired differences relative to the
    reference's mean in each scenario, in percent), each measure with its interval and the
    paired difference from the reference."""
    table: list[dict[str, Any]] = []
    base = rows[reference]
    for name, got in rows.items():
        for scenario in [*scenarios, "all"]:
            pick = [i for i, r in enumerate(got) if scenario in ("all", r["scenario"])]
            entry: dict[str, Any] = {"rules": name, "scenario": scenario}
            for measure in ("objective", "welfare", "honest_profit"):
                mine = [got[i][measure] for i in pick]
                theirs = [base[i][measure] for i in pick]
                assert [got[i]["seed"] for i in pick] == [base[i]["seed"] for i in pick]
                if scenario == "all":
                    means = {
                        s: float(np.mean([b[measure] for b in base if b["scenario"] == s]))
                        for s in scenarios
                    }
                    relative = [
                        100
                        * (got[i][measure] - base[i][measure])
                        / max(abs(means[got[i]["scenario"]]), 1e-9)
                        for i in pick
                    ]
                    entry[f"{measure}_diff_pct"] = _interval(relative)
                else:
                    entry[measure] = _interval(mine)
                    entry[f"{measure}_diff"] = _interval(
                        [a - b for a, b in zip(mine, theirs, strict=True)]
                    )
            table.append(entry)
    return table


def _gains(
    scenarios: Sequence[ScenarioParams],
    document: Mapping[str, object],
    names: Sequence[str],
    seeds: Sequence[int],
    deviators: int,
    executor: Executor,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        frame = incentives.deviation_gains(
            with_rules(scenario, document), names, seeds, deviators=deviators, executor=executor
        )
        for row in frame.iter_rows(named=True):
            rows.append({"scenario": scenario.name, **row})
    return rows


def _tune(
    study: StudyParams,
    scenarios: Sequence[ScenarioParams],
    seeds: Sequence[int],
    executor: Executor,
    rng_seed: int,
) -> _core.Weights:
    calibrated = [
        with_rules(s, _document(s.weights, "x", confidence_calibration=dict(study.calibration)))
        for s in scenarios
    ]
    found = tune.tune(
        calibrated,
        seeds=seeds,
        check_seeds=seeds[:2],
        maxiter=study.tune_maxiter,
        popsize=study.tune_popsize,
        rng_seed=rng_seed,
        executor=executor,
    )
    return found.weights


def run_study(
    study: StudyParams,
    *,
    executor: Executor | None = None,
    progress: Progress | None = None,
    extra_candidates: Sequence[Candidate] = (),
) -> dict[str, Any]:
    """Runs the study (the module docstring); returns its JSON-serialisable result."""
    pool: Executor = executor if executor is not None else SerialExecutor()
    say = progress or (lambda _: None)
    train = [dataclasses.replace(load_scenario(n), ticks=study.ticks) for n in study.train]
    test = [dataclasses.replace(load_scenario(n), ticks=study.ticks) for n in study.test]

    say("tuning on the train scenarios")
    tuned = _tune(study, train, study.train_seeds, pool, rng_seed=0)
    stability: list[dict[str, float]] = []
    rng = np.random.default_rng(0)
    for b in range(study.bootstrap):
        say(f"bootstrap re-tune {b + 1}/{study.bootstrap}")
        resample = tuple(
            int(s) for s in rng.choice(study.bootstrap_pool, size=len(study.train_seeds))
        )
        w = _tune(study, train, resample, pool, rng_seed=b + 1)
        stability.append({f: float(getattr(w, f)) for f in tune.WEIGHT_FIELDS})
    spread = {
        f: {
            "tuned": float(getattr(tuned, f)),
            "mean": float(np.mean([s[f] for s in stability])) if stability else float("nan"),
            "sd": float(np.std([s[f] for s in stability], ddof=1)) if len(stability) > 1 else 0.0,
            "p2_5": float(np.percentile([s[f] for s in stability], 2.5)) if stability else 0.0,
            "p97_5": float(np.percentile([s[f] for s in stability], 97.5)) if stability else 0.0,
        }
        for f in tune.WEIGHT_FIELDS
    }

    candidates = [*candidate_rules(study, tuned), *extra_candidates]
    adversaries = list(strategies.ATTACKER_STRATEGIES)

    say("choosing on the train scenarios")
    train_rows = evaluate_rules(train, study.check_seeds, candidates, pool)
    choice: list[dict[str, Any]] = []
    for c in candidates:
        rows = _gains(train, c.document, adversaries, study.check_seeds, study.deviators, pool)
        binding = incentives.binding_constraint(rows, adversaries)
        choice.append(
            {
                "rules": c.name,
                "objective": float(np.mean([r["objective"] for r in train_rows[c.name]])),
                "worst_adversary_upper_bound": float(binding["ci_high"]) if binding else 0.0,
                "binding": (
                    {k: binding[k] for k in ("scenario", "strategy", "mean", "ci_low", "ci_high")}
                    if binding
                    else None
                ),
                "train_gains": rows,
            }
        )
    admissible = [c for c in choice if c["worst_adversary_upper_bound"] <= 0]
    chosen = (
        max(admissible, key=lambda c: c["objective"])
        if admissible
        else min(choice, key=lambda c: c["worst_adversary_upper_bound"])
    )["rules"]
    by_name = {c.name: c for c in candidates}

    say("evaluating on the held-out scenarios")
    test_rows = evaluate_rules(test, study.test_seeds, candidates, pool)
    comparison = compare(test_rows, "spec", [s.name for s in test])

    say("incentive test on the held-out scenarios")
    every = list(strategies.NAMES)
    gains = {
        name: _gains(
            test, by_name[name].document, every, study.incentive_seeds, study.deviators, pool
        )
        for name in dict.fromkeys([chosen, "spec"])
    }
    say("confirming the held-out constraints left open")
    bar = confirm_open_constraints(study, test, by_name[chosen].document, gains[chosen], pool)
    honest = [r["honest_profit"] for r in test_rows[chosen]]
    recommended = dict(by_name[chosen].document)
    recommended["name"] = "recommended"
    return {
        "study": _as_json(study),
        "tuned_weights": spread,
        "bootstrap": stability,
        "choice": choice,
        "chosen": chosen,
        "recommended_rules": recommended,
        "held_out": comparison,
        "deviation_gains": gains,
        "held_out_bar": bar,
        "honest_break_even": {
            "rules": chosen,
            **_interval(honest),
            "per_scenario": {
                s.name: _interval(
                    [r["honest_profit"] for r in test_rows[chosen] if r["scenario"] == s.name]
                )
                for s in test
            },
        },
    }


def confirm_open_constraints(
    study: StudyParams,
    test: Sequence[ScenarioParams],
    document: Mapping[str, object],
    gains: Sequence[Mapping[str, Any]],
    executor: Executor,
) -> dict[str, Any]:
    """Step 7 (the module docstring): the adversary constraints in `gains` (the chosen rules'
    held-out incentive test) with an upper bound above 0, each re-measured on the study's
    confirm_seeds; whether the held-out bar is met."""
    adversaries = set(strategies.ATTACKER_STRATEGIES)
    open_rows = [r for r in gains if r["strategy"] in adversaries and r["ci_high"] > 0]
    by_name = {s.name: s for s in test}
    confirmed: list[dict[str, Any]] = []
    for row in open_rows:
        again = _gains(
            [by_name[row["scenario"]]],
            document,
            [row["strategy"]],
            study.confirm_seeds,
            study.deviators,
            executor,
        )
        confirmed.extend(again)
    return {
        "met": all(r["ci_high"] <= 0 for r in confirmed),
        "open_after_incentive_test": [
            {k: r[k] for k in ("scenario", "strategy", "mean", "ci_low", "ci_high", "n_seeds")}
            for r in open_rows
        ],
        "confirmation": confirmed,
    }


def _as_json(study: StudyParams) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(study), default=list))
    return out
