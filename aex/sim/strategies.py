"""Provider strategies: a registry of names and their vectorised rules.

A strategy is data plus three vectorised rules applied by the engine (never per row in Python):
which work a provider bids on, how it prices and delivers, and how it adapts after a block of
ticks. Codes are int8 per provider, so every rule is an `np.where` over the population.

- honest: true quality, calibrated confidence, price = cost × (1 + U(markup_min, markup_max)).
- overconfident: states confidence above its quality (+ confidence_boost).
- low_baller: bids `underbid` below its usual markup (often under cost) and fails more
  (success probability × quality_penalty).
- reputation_farmer: bids honestly on normal work until its tier reaches `farm_tier`; then bids
  only on large work, `cheat_underbid` cheaper, and cheats: it does not do the work (zero cost)
  and succeeds only with probability `cheat_quality` (a payment happens only on success).
- whitewasher: after its reputation falls below `reset_below_score` with at least
  `reset_min_contracts` contracts, re-registers under a new provider id with a clean history.
- learning: shades its markup from feedback: markup_shift += learning_rate × (win_rate −
  target_win_rate) after each block, clipped to [shift_min, shift_max].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

__all__ = ["ATTACKER_STRATEGIES", "STRATEGIES", "StrategySpec", "strategy_named"]

F64 = npt.NDArray[np.float64]
B1 = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class StrategySpec:
    name: str
    code: int
    defaults: Mapping[str, float]
    attacker: bool


_SPECS = (
    StrategySpec("honest", 0, {}, attacker=False),
    StrategySpec("overconfident", 1, {"confidence_boost": 0.3}, attacker=True),
    StrategySpec("low_baller", 2, {"underbid": 0.25, "quality_penalty": 0.7}, attacker=True),
    StrategySpec(
        "reputation_farmer",
        3,
        {"farm_tier": 1.0, "cheat_underbid": 0.2, "cheat_quality": 0.1},
        attacker=True,
    ),
    StrategySpec(
        "whitewasher", 4, {"reset_below_score": 0.5, "reset_min_contracts": 3.0}, attacker=True
    ),
    StrategySpec(
        "learning",
        5,
        {"learning_rate": 0.1, "target_win_rate": 0.3, "shift_min": -0.2, "shift_max": 0.6},
        attacker=False,
    ),
)
STRATEGIES: Mapping[str, StrategySpec] = MappingProxyType({s.name: s for s in _SPECS})
CODE = {s.name: s.code for s in _SPECS}
NAMES: tuple[str, ...] = tuple(s.name for s in sorted(_SPECS, key=lambda s: s.code))
ATTACKER_STRATEGIES: tuple[str, ...] = tuple(s.name for s in _SPECS if s.attacker)
assert [s.code for s in _SPECS] == list(range(len(_SPECS)))
# every parameter name is unique across strategies: the population stores one column per name
assert len({k for s in _SPECS for k in s.defaults}) == sum(len(s.defaults) for s in _SPECS)
PARAM_NAMES: tuple[str, ...] = tuple(k for s in _SPECS for k in s.defaults)


def strategy_named(name: str) -> StrategySpec:
    """The strategy `name`; KeyError with the known names listed otherwise."""
    if name not in STRATEGIES:
        known = ", ".join(NAMES)
        raise KeyError(f"unknown strategy {name!r}; known strategies: {known}")
    return STRATEGIES[name]


# --- the vectorised rules, over bids (provider index per bid) or over the population ---------


def bids_allowed(code: npt.NDArray[np.int8], farming_done: B1, large: B1) -> B1:
    """Which drawn bids a provider actually places: farmers bid on normal work while farming
    and only on large work once their tier is reached; everyone else bids on anything."""
    is_farmer = code == CODE["reputation_farmer"]
    return np.asarray(~is_farmer | (farming_done == large), dtype=np.bool_)


def markup_adjustment(
    code: npt.NDArray[np.int8], farming_done: B1, params: Mapping[str, F64]
) -> F64:
    """Per-bid additive change of markup: the low-baller's underbid, the farmer's cheat price."""
    underbid = np.where(code == CODE["low_baller"], params["underbid"], 0.0)
    cheat = np.where(
        (code == CODE["reputation_farmer"]) & farming_done, params["cheat_underbid"], 0.0
    )
    return -(underbid + cheat)


def delivery(
    code: npt.NDArray[np.int8], farming_done: B1, quality: F64, params: Mapping[str, F64]
) -> tuple[F64, F64]:
    """(success probability, cost factor) per bid if it wins."""
    cheating = (code == CODE["reputation_farmer"]) & farming_done
    factor = np.where(code == CODE["low_baller"], params["quality_penalty"], 1.0)
    success_probability = np.where(cheating, params["cheat_quality"], quality * factor)
    cost_factor = np.where(cheating, 0.0, 1.0)
    return success_probability, cost_factor


def farming_done(
    code: npt.NDArray[np.int8], tier: npt.NDArray[np.int8], params: Mapping[str, F64]
) -> B1:
    """Farmers whose tier has reached their target (evaluated at block start)."""
    return np.asarray(
        (code == CODE["reputation_farmer"]) & (tier >= params["farm_tier"]), dtype=np.bool_
    )


def learned_markup_shift(
    code: npt.NDArray[np.int8], shift: F64, bids: F64, wins: F64, params: Mapping[str, F64]
) -> F64:
    """The learning bidder's new markup shift after a block of win/loss feedback."""
    learner = (code == CODE["learning"]) & (bids > 0)
    win_rate = wins / np.maximum(bids, 1.0)
    step = params["learning_rate"] * (win_rate - params["target_win_rate"])
    moved = np.clip(shift + step, params["shift_min"], params["shift_max"])
    return np.where(learner, moved, shift)


def whitewash(
    code: npt.NDArray[np.int8], score: F64, contracts: F64, params: Mapping[str, F64]
) -> B1:
    """Whitewashers that re-register now (their history is then wiped by the engine)."""
    eligible = (code == CODE["whitewasher"]) & (contracts >= params["reset_min_contracts"])
    return np.asarray(eligible & (score < params["reset_below_score"]), dtype=np.bool_)
