"""Scenarios are data: `scenarios/*.toml` parsed into frozen `ScenarioParams` (STYLE.md 14).

Every field has a documented default, so a scenario file states only what differs. Parsing
never evaluates anything: TOML tables map onto frozen dataclasses field by field, types are
checked, and an error names the offending field by its dotted path
(`providers[1].count: expected int, got str`). Strategy names go through a registry that lists
the known names on a miss.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aex.core import limits
from aex.sim import _core
from aex.sim.strategies import STRATEGIES, strategy_named

__all__ = [
    "LOG_BIDS_LEVELS",
    "LOG_REPUTATION_LEVELS",
    "PRICING_RULES",
    "SCENARIOS",
    "LogParams",
    "MarketParams",
    "ProviderGroup",
    "ReputationParams",
    "ScenarioError",
    "ScenarioParams",
    "ScoringParams",
    "load_scenario",
    "parse_scenario",
    "rules_document",
    "scenario_named",
    "validate_scenario",
]

LOG_BIDS_LEVELS = ("none", "winners", "all")
LOG_REPUTATION_LEVELS = ("none", "changes")
PRICING_RULES = ("break_even", "cost_plus")


class ScenarioError(ValueError):
    """A scenario file that cannot be parsed; the message starts with the field's dotted path."""


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Demand: work items per tick, their categories and budgets, and the consumers posting them."""

    work_per_tick: int = 100  # work items posted per tick at tick 0
    work_growth_per_tick: float = 0.0  # multiplicative growth of work_per_tick per tick
    work_per_tick_max: int = 10_000  # growth stops here (a bound for each tick's arrays)
    categories: int = 1  # providers and work each belong to one category; bids match it
    consumers: int = 1_000  # consumers posting work; each work item picks one uniformly
    budget_min_major: float = 1.0  # budget ~ U(budget_min_major, budget_max_major)
    budget_max_major: float = 3.0
    budget_floor_fraction: float = 0.0  # the work's budget min = fraction × budget (price score)
    large_work_probability: float = 0.0  # share of "large" work items (the farmers' target)
    large_work_multiplier: float = 10.0  # a large item's budget = multiplier × a normal budget
    bid_window_ms: int = 60_000  # bids arrive in [tick start, + window); the window then closes
    tick_ms: int = 86_400_000  # one tick is a day of exchange time (decay, 30-day consistency)
    # SLA terms of every work item (the spec's work `sla`): the turnaround the consumer wants
    # (scored: min(1, required / promised)) and the hard limit beyond which a bid is refused
    # (0: none). A contract is late when delivered after its promised turnaround.
    required_turnaround_ms: int = 14_400_000  # 4h
    hard_limit_turnaround_ms: int = 0
    # Disputes: a settled contract is disputed with this probability; the consumer wins (a
    # refund: DISPUTE_LOST) with probability 1 − the provider's quality, else DISPUTE_WON.
    dispute_probability: float = 0.02
    # Pricing: "break_even" (price = cost / ((1 − fee) × expected paid share) × (1 + markup):
    # providers price for failure and the fee) or "cost_plus" (cost × (1 + markup), the
    # reference market's rule).
    pricing: str = "break_even"
    # Exit and entry on realised profit, at block boundaries: a provider with at least
    # exit_min_contracts contracts and a negative realised profit leaves (0: nobody exits);
    # when the active providers made a profit in the block, up to entry_per_block providers of
    # groups marked `enters_on_profit` join.
    exit_min_contracts: int = 20
    entry_per_block: int = 2


@dataclass(frozen=True, slots=True)
class ProviderGroup:
    """Providers following one strategy; attributes drawn once per provider at the start."""

    strategy: str = "honest"
    count: int = 100
    quality_alpha: float = 4.0  # true quality ~ Beta(alpha, beta)
    quality_beta: float = 2.0
    quality_factor: float = 1.0  # effective success probability = quality × factor
    cost_min_major: float = 0.5  # cost ~ U(cost_min_major, cost_max_major)
    cost_max_major: float = 1.5
    markup_min: float = 0.05  # price = cost × (1 + U(markup_min, markup_max))
    markup_max: float = 0.30
    confidence_bias: float = 0.0  # stated confidence = clip(quality + bias + N(0, sd), 0, 1)
    confidence_noise_sd: float = 0.1
    sample_probability: float = 0.5  # share of bids with a sample (graded as the exchange does)
    certified_probability: float = 0.3  # one active certificate matching the category
    # promised turnaround ~ U(min, max) in whole seconds; the realised one is
    # promised / turnaround_margin × lognormal(0, turnaround_noise_sd): late when > promised
    turnaround_min_ms: int = 7_200_000  # 2h
    turnaround_max_ms: int = 28_800_000  # 8h
    turnaround_margin: float = 1.5
    turnaround_noise_sd: float = 0.25
    enters_on_profit: bool = False  # dormant until the market is profitable (see MarketParams)
    bid_probability: float = 0.05  # chance to bid on each matching work item
    join_tick_max: int = 0  # joins at a tick ~ U{0..join_tick_max} (market growth)
    params: Mapping[str, float] = field(default_factory=dict)  # strategy-specific knobs


@dataclass(frozen=True, slots=True)
class ScoringParams:
    """The exchange's rules: scoring weights (a preset name or explicit values), the fee, the
    confidence calibration (the exchange's `confidence_calibration` setting; empty: off, the
    spec's plain stated confidence) and the payment rule (the exchange's `payment_rule`:
    "first_score", the winner paid its bid, or "second_score", aex/core/payment_rule.py)."""

    preset: str = "balanced"  # a name in aex.core.scoring.PRESETS, used when `weights` is empty
    weights: Mapping[str, float] = field(default_factory=dict)  # explicit weights win
    fee_bps: int = 1_500
    calibration: Mapping[str, float] = field(default_factory=dict)
    payment_rule: str = "first_score"


@dataclass(frozen=True, slots=True)
class ReputationParams:
    """The exchange's reputation setting (aex/core/rules.py): rule "spec" (the five-component
    score, the exchange's default) or "success_ratio" ((s + alpha) / (n + alpha + beta)), and
    the Beta prior (the spec rule's transaction score, or the success ratio's)."""

    rule: str = "spec"
    prior_alpha: float = 2.0
    prior_beta: float = 2.0


@dataclass(frozen=True, slots=True)
class LogParams:
    """What the market log keeps: bids none|winners|all; reputation none|changes (per tick)."""

    bids: str = "winners"
    reputation: str = "changes"


@dataclass(frozen=True, slots=True)
class ScenarioParams:
    """A whole scenario. `block_ticks` ticks are drawn and cleared together (see engine.py);
    reputation stays exact per tick, strategies react at block boundaries."""

    name: str = "unnamed"
    ticks: int = 100
    seed: int | None = None  # None: fresh OS entropy, recorded in the market log
    block_ticks: int = 20
    currency: str = "USD"
    market: MarketParams = field(default_factory=MarketParams)
    providers: tuple[ProviderGroup, ...] = (ProviderGroup(),)
    scoring: ScoringParams = field(default_factory=ScoringParams)
    reputation: ReputationParams = field(default_factory=ReputationParams)
    log: LogParams = field(default_factory=LogParams)

    @property
    def weights(self) -> _core.Weights:
        return weights_of(self.scoring)

    @property
    def rules(self) -> _core.ExchangeRules:
        """The exchange rules this scenario runs, read by the core's rules-file reader (once
        per parameters object: the engine asks for them every tick)."""
        cached = _RULES_CACHE.get(id(self))
        if cached is not None and cached[0] is self:
            return cached[1]
        made = _core.rules_from_json(rules_document(self))
        assert isinstance(made, _core.ExchangeRules), made
        if len(_RULES_CACHE) >= _RULES_CACHE_MAX:
            _RULES_CACHE.clear()
        _RULES_CACHE[id(self)] = (self, made)
        return made

    @property
    def provider_count(self) -> int:
        return sum(group.count for group in self.providers)


def weights_of(scoring: ScoringParams) -> _core.Weights:
    if not scoring.weights:
        return _core.PRESETS[scoring.preset]
    made = _core.make_weights(dict(scoring.weights))
    assert isinstance(made, _core.Weights), made
    return made


# id(params) -> (params, rules); the params object is kept, so its id is not reused meanwhile
_RULES_CACHE: dict[int, tuple[ScenarioParams, _core.ExchangeRules]] = {}
_RULES_CACHE_MAX = 64


def rules_document(params: ScenarioParams) -> dict[str, object]:
    """The scenario's rules as the exchange's rules file (`aex serve --weights`)."""
    document: dict[str, object] = _core.weights_to_json(params.weights)
    if params.scoring.calibration:
        document["confidence_calibration"] = dict(params.scoring.calibration)
    document["payment_rule"] = params.scoring.payment_rule
    r = params.reputation
    document["reputation"] = {
        "rule": r.rule,
        "prior_alpha": r.prior_alpha,
        "prior_beta": r.prior_beta,
    }
    return document


_NESTED: dict[str, type] = {
    "market": MarketParams,
    "scoring": ScoringParams,
    "reputation": ReputationParams,
    "log": LogParams,
}


def _check_scalar(value: object, annotation: str, path: str) -> object:
    if annotation == "bool":
        if not isinstance(value, bool):
            raise ScenarioError(f"{path}: expected true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{path}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ScenarioError(f"{path}: expected a finite number, got {value!r}")
    return float(value)


def _check_type(value: object, annotation: str, path: str) -> object:
    # Only the few annotation shapes used above; bool is not an int here.
    if annotation == "int" or annotation == "int | None":
        if value is None and annotation == "int | None":
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{path}: expected an integer, got {value!r}")
        return value
    if annotation in ("bool", "float"):
        return _check_scalar(value, annotation, path)
    if annotation == "str":
        if not isinstance(value, str):
            raise ScenarioError(f"{path}: expected a string, got {value!r}")
        return value
    if annotation == "Mapping[str, float]":
        if not isinstance(value, dict):
            raise ScenarioError(f"{path}: expected a table, got {value!r}")
        return {k: _check_type(v, "float", f"{path}.{k}") for k, v in value.items()}
    raise AssertionError(f"unhandled annotation {annotation} at {path}")


def _build(cls: type, table: object, path: str) -> Any:
    if not isinstance(table, dict):
        raise ScenarioError(f"{path}: expected a table, got {table!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        known = ", ".join(fields)
        raise ScenarioError(f"{path}.{unknown[0]}: unknown field; known fields: {known}")
    values: dict[str, object] = {}
    for name, value in table.items():
        sub = f"{path}.{name}" if path else name
        if name in _NESTED and cls is ScenarioParams:
            values[name] = _build(_NESTED[name], value, sub)
        elif name == "providers" and cls is ScenarioParams:
            if not isinstance(value, list) or not value:
                raise ScenarioError(f"{sub}: expected a non-empty array of tables")
            values[name] = tuple(
                _build(ProviderGroup, item, f"{sub}[{i}]") for i, item in enumerate(value)
            )
        else:
            values[name] = _check_type(value, str(fields[name].type), sub)
    return cls(**values)


def _require(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise ScenarioError(f"{path}: {message}")


def _validate(p: ScenarioParams) -> None:
    _require(0 < p.ticks <= limits.sim_steps_max, "ticks", f"must be in 1..{limits.sim_steps_max}")
    _require(p.block_ticks > 0, "block_ticks", "must be positive")
    if p.seed is not None:
        _require(p.seed >= 0, "seed", "must be non-negative")
    m = p.market
    _require(0 < m.work_per_tick <= m.work_per_tick_max, "market.work_per_tick", "out of range")
    _require(m.categories > 0, "market.categories", "must be positive")
    _require(m.consumers > 0, "market.consumers", "must be positive")
    _require(0 < m.budget_min_major <= m.budget_max_major, "market.budget_min_major", "bad range")
    _require(0 <= m.budget_floor_fraction < 1, "market.budget_floor_fraction", "must be in [0,1)")
    _require(0 <= m.large_work_probability <= 1, "market.large_work_probability", "not in [0,1]")
    _require(
        limits.bid_window_seconds_min * 1000
        <= m.bid_window_ms
        <= limits.bid_window_seconds_max * 1000
        and m.bid_window_ms % 1000 == 0,
        "market.bid_window_ms",
        "whole seconds within the exchange's bid window range",
    )
    _require(m.tick_ms >= m.bid_window_ms + 60_000, "market.tick_ms", "bid window + 1 min at least")
    _require(m.required_turnaround_ms >= 0, "market.required_turnaround_ms", "must be >= 0")
    _require(m.hard_limit_turnaround_ms >= 0, "market.hard_limit_turnaround_ms", "must be >= 0")
    _require(0 <= m.dispute_probability <= 1, "market.dispute_probability", "not in [0,1]")
    _require(m.pricing in PRICING_RULES, "market.pricing", f"one of {PRICING_RULES}")
    _require(m.exit_min_contracts >= 0, "market.exit_min_contracts", "must be >= 0")
    _require(m.entry_per_block >= 0, "market.entry_per_block", "must be >= 0")
    for i, g in enumerate(p.providers):
        path = f"providers[{i}]"
        try:
            spec = strategy_named(g.strategy)
        except KeyError as error:
            raise ScenarioError(f"{path}.strategy: {error.args[0]}") from None
        unknown = sorted(set(g.params) - set(spec.defaults))
        _require(not unknown, f"{path}.params", f"unknown {unknown}; known: {list(spec.defaults)}")
        _require(g.count > 0, f"{path}.count", "must be positive")
        _require(g.quality_alpha > 0 and g.quality_beta > 0, f"{path}.quality_alpha", "must be > 0")
        _require(0 < g.cost_min_major <= g.cost_max_major, f"{path}.cost_min_major", "bad range")
        _require(g.markup_min <= g.markup_max, f"{path}.markup_min", "exceeds markup_max")
        _require(0 < g.bid_probability <= 1, f"{path}.bid_probability", "must be in (0,1]")
        _require(0 <= g.sample_probability <= 1, f"{path}.sample_probability", "not in [0,1]")
        _require(
            1000 <= g.turnaround_min_ms <= g.turnaround_max_ms,
            f"{path}.turnaround_min_ms",
            "at least 1s and at most turnaround_max_ms",
        )
        _require(g.turnaround_margin > 0, f"{path}.turnaround_margin", "must be > 0")
        _require(g.turnaround_noise_sd >= 0, f"{path}.turnaround_noise_sd", "must be >= 0")
    s = p.scoring
    _require(s.preset in _core.PRESETS, "scoring.preset", f"known: {list(_core.PRESETS)}")
    if s.weights:
        made = _core.make_weights(dict(s.weights))
        if not isinstance(made, _core.Weights):
            where = (
                f"scoring.weights.{made.field}" if made.field in s.weights else "scoring.weights"
            )
            raise ScenarioError(f"{where}: {made.reason} {made.detail}".rstrip())
    _require(0 <= s.fee_bps < 10_000, "scoring.fee_bps", "must be in 0..9999")
    made_rules = _core.rules_from_json(rules_document(p))
    if not isinstance(made_rules, _core.ExchangeRules):
        section = {
            "reputation": "reputation",
            "confidence_calibration": "scoring.calibration",
            "payment_rule": "scoring.payment_rule",
        }
        head = str(made_rules.field).split(".")[0]
        tail = str(made_rules.field)[len(head) :]
        raise ScenarioError(f"{section.get(head, head)}{tail}: {made_rules.detail}")
    _require(p.log.bids in LOG_BIDS_LEVELS, "log.bids", f"one of {LOG_BIDS_LEVELS}")
    _require(p.log.reputation in LOG_REPUTATION_LEVELS, "log.reputation", "none or changes")


def validate_scenario(params: ScenarioParams) -> ScenarioParams:
    """Checks built parameters as parsing does (e.g. after dataclasses.replace); raises
    ScenarioError naming the field, else returns them."""
    _validate(params)
    return params


def parse_scenario(table: Mapping[str, object], *, name: str = "unnamed") -> ScenarioParams:
    """Builds and validates ScenarioParams from a TOML table; raises ScenarioError naming the
    field."""
    data = dict(table)
    data.setdefault("name", name)
    params: ScenarioParams = _build(ScenarioParams, data, "")
    _validate(params)
    return params


def load_scenario(path: str | Path) -> ScenarioParams:
    """Reads a scenario file, or a registered scenario name (see SCENARIOS)."""
    candidate = Path(path)
    if not candidate.exists() and str(path) in SCENARIOS:
        return scenario_named(str(path))
    try:
        with candidate.open("rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        known = ", ".join(sorted(SCENARIOS))
        raise ScenarioError(f"{path}: no such file; known scenario names: {known}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: invalid TOML: {error}") from None
    return parse_scenario(table, name=candidate.stem)


SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
# Data files in scenarios/ that are not scenarios: the default parameter set of
# `aex sensitivity` (aex/sim/sensitivity.py) and the study of `aex study` (aex/sim/study.py).
NOT_SCENARIOS = frozenset({"sensitivity", "study"})


def _registered() -> dict[str, Path]:
    if not SCENARIO_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.toml")) if p.stem not in NOT_SCENARIOS}


class _Registry(dict[str, Path]):
    def __missing__(self, key: str) -> Path:
        known = ", ".join(sorted(self))
        raise KeyError(f"unknown scenario {key!r}; known scenarios: {known}")


SCENARIOS: Mapping[str, Path] = _Registry(_registered())


def scenario_named(name: str) -> ScenarioParams:
    """The registered scenario `name` (a file stem in scenarios/); KeyError lists known names."""
    return load_scenario(SCENARIOS[name])


assert set(STRATEGIES)  # the registry is non-empty at import time
