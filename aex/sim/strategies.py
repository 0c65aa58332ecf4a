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
- bandit: a profit maximiser. Each provider runs EXP3 (Auer et al. 2002) over a grid of
  BANDIT_MARKUP_ARMS × BANDIT_CONFIDENCE_ARMS arms (markup on its break-even price, stated
  confidence). At each block start it samples an arm from its mixed distribution with the run's
  strategy stream; after the block it is rewarded by its realised profit per auction it could
  bid on (payouts − costs, in units of `reward_scale` × its unit cost, clipped to [−1, 1] and
  mapped onto [0, 1]). It learns under whatever weights and calibration the market runs, so a
  tuner evaluating weights w meets bidders that adapted to w.
- sybil: many fresh identities: re-registers under a new provider id (empty record) whenever
  its current identity has `sybil_rotate_contracts` contracts, good or bad.
- collusion: a bid-rotation ring (every collusion provider of the market is in it). For each
  work item one member, rotating with the work id, is the designated winner and bids
  `ring_markup` above its usual markup; the others place cover bids `cover_markup` higher.
- on_off: honest for `on_ticks` ticks, then defects for `off_ticks` (does not do the work: zero
  cost, success with probability `off_quality`), and again.
- self_dealing: its owner also runs a consumer tenant and wash-trades `wash_per_tick` contracts
  of `wash_price_major` per tick with itself to farm reputation: each trade costs its owner
  the platform fee (the price goes round, the fee does not) and yields a successful outcome
  when the core counts it as evidence. With `wash_same_tenant` = 1 the consumer is the
  provider's own tenant, which the core's bid admission refuses (no trade happens).
- cert_farmer: collects `farmed_certificates` self-asserted capability certificates; they count
  toward certification only if the core's counts_toward_certification says so (it says no).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

__all__ = [
    "ATTACKER_STRATEGIES",
    "BANDIT_ARMS",
    "STRATEGIES",
    "StrategySpec",
    "bandit_arms",
    "bandit_choose",
    "bandit_update",
    "strategy_named",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B1 = npt.NDArray[np.bool_]

# The bandit's arm grid: fractions of its [min, max] ranges, markup-major (arm = m × C + c).
BANDIT_MARKUP_ARMS = 5
BANDIT_CONFIDENCE_ARMS = 3
BANDIT_ARMS = BANDIT_MARKUP_ARMS * BANDIT_CONFIDENCE_ARMS


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
    StrategySpec(
        "bandit",
        6,
        {
            "arm_markup_min": 0.0,
            "arm_markup_max": 0.8,
            "arm_confidence_min": 0.5,
            "arm_confidence_max": 1.0,
            "bandit_gamma": 0.1,
            "bandit_eta": 0.02,
            "reward_scale": 2.0,
        },
        attacker=False,
    ),
    StrategySpec("sybil", 7, {"sybil_rotate_contracts": 1.0}, attacker=True),
    StrategySpec("collusion", 8, {"ring_markup": 0.3, "cover_markup": 1.0}, attacker=True),
    StrategySpec(
        "on_off", 9, {"on_ticks": 20.0, "off_ticks": 10.0, "off_quality": 0.1}, attacker=True
    ),
    StrategySpec(
        "self_dealing",
        10,
        {"wash_per_tick": 1.0, "wash_price_major": 1.0, "wash_same_tenant": 0.0},
        attacker=True,
    ),
    StrategySpec("cert_farmer", 11, {"farmed_certificates": 3.0}, attacker=True),
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


def has_bidding_rules(code: npt.NDArray[np.int8]) -> bool:
    """Whether any provider changes which work it bids on, its price or its delivery."""
    rules = [CODE[n] for n in ("low_baller", "reputation_farmer", "collusion", "on_off")]
    return bool(np.isin(code, rules).any())


def bids_allowed(code: npt.NDArray[np.int8], farming_done: B1, large: B1) -> B1:
    """Which drawn bids a provider actually places: farmers bid on normal work while farming
    and only on large work once their tier is reached; everyone else bids on anything."""
    is_farmer = code == CODE["reputation_farmer"]
    return np.asarray(~is_farmer | (farming_done == large), dtype=np.bool_)


def markup_adjustment(
    code: npt.NDArray[np.int8],
    farming_done: B1,
    params: Mapping[str, F64],
    designated: B1 | None = None,
) -> F64:
    """Per-bid additive change of markup: the low-baller's underbid, the farmer's cheat price,
    the ring's raised price (designated winner) or cover bid (the other members)."""
    underbid = np.where(code == CODE["low_baller"], params["underbid"], 0.0)
    cheat = np.where(
        (code == CODE["reputation_farmer"]) & farming_done, params["cheat_underbid"], 0.0
    )
    change = -(underbid + cheat)
    if designated is not None:
        ring = code == CODE["collusion"]
        raised = np.where(designated, params["ring_markup"], params["cover_markup"])
        change += np.where(ring, raised, 0.0)
    return np.asarray(change, dtype=np.float64)


def ring_designated(code: npt.NDArray[np.int8], provider: I64, work_id: I64) -> B1:
    """Per bid: whether the bidder is the ring's designated winner of this work item (members
    rotate with the work id, in slot order)."""
    ring = code == CODE["collusion"]
    members = int(ring.sum())
    if members == 0:
        return np.zeros(provider.size, np.bool_)
    rank = np.cumsum(ring) - 1
    return np.asarray(ring[provider] & (work_id % members == rank[provider]), dtype=np.bool_)


def defecting(code: npt.NDArray[np.int8], tick: I64, params: Mapping[str, F64]) -> B1:
    """Per bid: on-off providers in their off phase at the bid's tick."""
    on, off = params["on_ticks"], params["off_ticks"]
    period = np.maximum(on + off, 1.0)
    off_phase = np.mod(tick.astype(np.float64), period) >= on
    return np.asarray((code == CODE["on_off"]) & off_phase, dtype=np.bool_)


def delivery(
    code: npt.NDArray[np.int8],
    farming_done: B1,
    quality: F64,
    params: Mapping[str, F64],
    defect: B1 | None = None,
) -> tuple[F64, F64]:
    """(success probability, cost factor) per bid if it wins."""
    cheating = (code == CODE["reputation_farmer"]) & farming_done
    factor = np.where(code == CODE["low_baller"], params["quality_penalty"], 1.0)
    success_probability = np.where(cheating, params["cheat_quality"], quality * factor)
    cost_factor = np.where(cheating, 0.0, 1.0)
    if defect is not None:
        success_probability = np.where(defect, params["off_quality"], success_probability)
        cost_factor = np.where(defect, 0.0, cost_factor)
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


def sybil_rotate(code: npt.NDArray[np.int8], contracts: F64, params: Mapping[str, F64]) -> B1:
    """Sybils that take a fresh identity now: their current one has enough contracts."""
    due = contracts >= np.maximum(params["sybil_rotate_contracts"], 1.0)
    return np.asarray((code == CODE["sybil"]) & due, dtype=np.bool_)


# --- the bandit (EXP3), vectorised over providers ----------------------------------------------


def bandit_arms(params: Mapping[str, F64]) -> tuple[F64, F64]:
    """(markup, stated confidence) of every arm, per provider: two (providers, BANDIT_ARMS)
    arrays over each provider's own ranges."""
    m = np.linspace(0.0, 1.0, BANDIT_MARKUP_ARMS)
    c = np.linspace(0.0, 1.0, BANDIT_CONFIDENCE_ARMS)
    m_frac = np.repeat(m, BANDIT_CONFIDENCE_ARMS)[None, :]
    c_frac = np.tile(c, BANDIT_MARKUP_ARMS)[None, :]
    lo_m, hi_m = params["arm_markup_min"][:, None], params["arm_markup_max"][:, None]
    lo_c, hi_c = params["arm_confidence_min"][:, None], params["arm_confidence_max"][:, None]
    markup = lo_m + (hi_m - lo_m) * m_frac
    confidence = np.clip(lo_c + (hi_c - lo_c) * c_frac, 0.0, 1.0)
    return markup, confidence


def bandit_probabilities(log_weight: F64, params: Mapping[str, F64]) -> F64:
    """EXP3's mixed distribution: (1 − γ) × softmax(log weights) + γ / K, per provider."""
    shifted = log_weight - log_weight.max(axis=1, keepdims=True)
    w = np.exp(shifted)
    w /= w.sum(axis=1, keepdims=True)
    gamma = np.clip(params["bandit_gamma"], 0.0, 1.0)[:, None]
    return np.asarray((1.0 - gamma) * w + gamma / BANDIT_ARMS, dtype=np.float64)


def bandit_choose(log_weight: F64, uniform: F64, params: Mapping[str, F64]) -> I64:
    """Each provider's arm for the block: inverse CDF of its distribution at its uniform."""
    cdf = np.cumsum(bandit_probabilities(log_weight, params), axis=1)
    arm = (cdf < uniform[:, None] * cdf[:, -1:]).sum(axis=1)
    return np.asarray(np.minimum(arm, BANDIT_ARMS - 1), dtype=np.int64)


def bandit_update(
    code: npt.NDArray[np.int8],
    log_weight: F64,
    arm: I64,
    profit_minor: F64,
    opportunities: F64,
    unit_cost_minor: F64,
    params: Mapping[str, F64],
) -> F64:
    """EXP3's update after a block: the played arm's log weight += η × reward / p(arm), for
    bandits that had at least one auction to bid on (no observation, no update)."""
    learner = (code == CODE["bandit"]) & (opportunities > 0)
    if not bool(learner.any()):
        return log_weight
    scale = np.maximum(params["reward_scale"] * unit_cost_minor, 1.0)
    per_auction = profit_minor / np.maximum(opportunities, 1.0) / scale
    reward = (np.clip(per_auction, -1.0, 1.0) + 1.0) / 2.0
    rows = np.arange(code.size)
    p = bandit_probabilities(log_weight, params)[rows, arm]
    new = log_weight.copy()
    step = params["bandit_eta"] * reward / np.maximum(p, 1e-12)
    new[rows, arm] += np.where(learner, step, 0.0)
    return new
