"""The market engine: one `step(streams, state, params, population)` per block of ticks.

Theory of operation. Parameters (`ScenarioParams`, frozen), the drawn population
(`Population`, frozen, fixed for a run) and the evolving `MarketState` are separate types;
`step` returns a new state and the block's market-log rows. All formulas come from aex/core
through aex/sim/_core.py: price score (`price_score_column`), ranking and the winner
(`rank_auctions`), the contract price (`contract_prices`), reputation (`beta_posterior_mean`),
tiers (`tiers_for`) and the fee split (`split_fee_columns`).

Exact per-tick reputation, drawing many ticks at once. Within a tick every auction sees the
reputations as of the tick's start; reputation is the only thing one tick passes to the next
inside a block. A block of B ticks is therefore drawn and priced at once (work, bidders,
prices, components, outcome uniforms: `draw_block` needs no state, so the runner draws the next
blocks on a producer thread) and then cleared tick by tick: each tick's auctions (a contiguous
run of bids) are ranked by the core with the tick's reputations, whose awards and outcomes
update the records for the next tick. Strategies (learning, whitewashing, farming) react at
block boundaries.

Randomness (STYLE.md 13): one SeedSequence per run, one child per replication, and from each
replication one Generator per component (population, work, bids, outcomes). Every draw's count
depends on the parameters only, never on the state or the weights, so runs that differ only in
weights see the same work, bids and outcome uniforms (common random numbers).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aex.sim import _core, strategies
from aex.sim.scenario import ScenarioParams

__all__ = [
    "BlockLog",
    "Draws",
    "MarketState",
    "Population",
    "Streams",
    "block_ticks_at",
    "draw_block",
    "init",
    "step",
    "work_counts",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B1 = npt.NDArray[np.bool_]
Columns = dict[str, npt.NDArray[np.generic]]

MINOR_PER_MAJOR = 100  # the simulator prices in cents (currency exponent 2)
SIM_CURRENCY = "USD"
_GAP_REFILLS_MAX = 64  # top-up rounds of the geometric-gap draw (each covers ~all of a slice)
EXPECTED_SUCCESS_MIN = 0.05  # break-even pricing never divides by less (a hopeless provider)
# Exchange time a contract's last step may take after delivery: the dispute is raised 1 s after
# settlement and resolved 1 s later, all before the next tick's windows open.
_DISPUTE_STEP_MS = 1_000
_TICK_MARGIN_MS = 5_000


@dataclass(frozen=True, slots=True)
class Streams:
    """One Generator per component, spawned from the replication's SeedSequence."""

    population: np.random.Generator
    work: np.random.Generator
    bids: np.random.Generator
    outcomes: np.random.Generator
    # the strategies' own randomness (the bandit's arm draws): a fifth child, so that the
    # first four streams are those of a run without it, whatever strategies play
    strategy: np.random.Generator

    @classmethod
    def spawn(cls, seed: int, replication: int) -> Streams:
        replication_seq = np.random.SeedSequence(seed).spawn(replication + 1)[replication]
        children = replication_seq.spawn(5)
        return cls(*(np.random.Generator(np.random.PCG64(c)) for c in children))


@dataclass(frozen=True, slots=True)
class Population:
    """Provider slots drawn once per run, sorted by category (bids draw over category slices).

    cost_minor is the cost of one unit of work (a normal item; a large item costs
    large_work_multiplier units); expected_paid is the share of won work a provider expects
    to be paid for (its success probability, less the disputes it expects to lose), which
    break-even pricing divides by. promised_ms is the SLA a provider states on its bids (whole
    seconds), speed_ms its mean realised turnaround.
    """

    strategy_code: npt.NDArray[np.int8]
    quality: F64
    cost_minor: I64
    markup_min: F64
    markup_max: F64
    confidence: F64
    has_sample: B1
    promised_ms: I64
    speed_ms: F64
    turnaround_noise_sd: F64
    certified: B1
    enters_on_profit: B1
    bid_probability: F64
    category: npt.NDArray[np.int32]
    join_tick: I64
    expected_paid: F64
    params: Mapping[str, F64]
    category_start: I64
    category_size: I64

    @property
    def size(self) -> int:
        return int(self.quality.size)

    @property
    def active_certificates(self) -> I64:
        """Active certificates per provider that count toward certification: one issued
        matching its category, or none, plus a certificate farmer's self-asserted ones when
        the core's counts_toward_certification counts them (it does not)."""
        issued = self.certified.astype(np.int64)
        if not _core.SELF_ASSERTED_COUNTS:
            return issued
        farmed = np.rint(self.params["farmed_certificates"]).astype(np.int64)
        return np.asarray(issued + farmed, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class MarketState:
    """What evolves: the tick, each slot's outcome record under its current identity, strategy
    state, who is in the market, each slot's realised profit, and the id counters."""

    tick: int
    record: _core.ReputationTally  # every slot's outcomes under its current identity, tallied
    identity_id: I64
    markup_shift: F64
    active: B1
    profit_minor: F64  # realised payouts − costs, per slot, since the run started
    contracts: F64  # contracts per slot since the run started (exit rule)
    next_identity_id: int
    next_work_id: int
    next_bid_id: int
    claim: F64 | None = None  # stated confidence per slot (None: the population's)
    bandit_log_weight: F64 | None = None  # (slots, BANDIT_ARMS): EXP3's log weights
    bandit_arm: I64 | None = None  # the arm each slot plays in the current block

    @property
    def stated_confidence(self) -> F64 | None:
        return self.claim


@dataclass(frozen=True, slots=True)
class BlockLog:
    """The market-log rows of one block, by table, plus counters for the progress line."""

    tables: dict[str, Columns]
    ticks: int
    work_items: int
    bids: int
    awards: int
    successes: int
    fee_minor: int
    rounds: int
    # every contract of the block, in work order (not a market-log table): work_id, the
    # awarded, completed and outcome times, delivered, disputed, refunded, the OutcomeKind
    contracts: Columns = dataclasses.field(default_factory=dict)
    # every wash trade a self-dealer attempted in the block, in tick order (not a market-log
    # table): tick, slot, provider_id, price_minor, fee_minor, awarded_at_ms, outcome_at_ms,
    # admitted (the core's bid admission let it through; refused ones trade nothing and cost
    # no fee) and evidence (it yielded a success outcome: the core's evidence_mask)
    wash_trades: Columns = dataclasses.field(default_factory=dict)


def _minor(major: F64 | float) -> I64:
    return np.asarray(np.rint(np.asarray(major) * MINOR_PER_MAJOR), dtype=np.int64)


def close_ms(params: ScenarioParams, tick: int | I64) -> int | I64:
    """When the bid windows of `tick`'s work close: the tick's start + the bid window. Every
    auction of a tick is evaluated then, with the reputations of all earlier outcomes."""
    return tick * params.market.tick_ms + params.market.bid_window_ms


def reputation_at(
    params: ScenarioParams,
    population: Population,
    record: _core.ReputationTally,
    now_ms: int,
) -> _core.ReputationScores:
    """Every slot's reputation and tier at now_ms, under the scenario's reputation setting:
    the core's reputation_scores of every outcome so far (the exchange's reputation_of is that
    function with one provider), in its running form (reputation_from_tally)."""
    return _core.reputation_from_tally(
        record,
        active_certificates=population.active_certificates,
        now_ms=int(now_ms),
        params=params.rules.reputation,
    )


def _successes(scores: _core.ReputationScores) -> F64:
    # as the exchange derives it from a Reputation (serve/market/usecases.py: round(rate ×
    # contracts))
    return np.rint(scores.success_rate * scores.contracts)


def init(rng: np.random.Generator, params: ScenarioParams) -> tuple[Population, MarketState]:
    """Draws the provider population (one draw per attribute per group, in file order)."""
    parts: dict[str, list[npt.NDArray[np.generic]]] = {}

    def put(name: str, values: npt.NDArray[np.generic]) -> None:
        parts.setdefault(name, []).append(values)

    categories = params.market.categories
    for group in params.providers:
        n = group.count
        spec = strategies.strategy_named(group.strategy)
        quality = rng.beta(group.quality_alpha, group.quality_beta, n)
        knobs = {**spec.defaults, **group.params}
        boost = knobs.get("confidence_boost", 0.0)
        noise = rng.normal(0.0, group.confidence_noise_sd, n)
        put("strategy_code", np.full(n, spec.code, np.int8))
        put("quality", quality)
        put(
            "cost_minor",
            np.maximum(_minor(rng.uniform(group.cost_min_major, group.cost_max_major, n)), 1),
        )
        put("markup_min", np.full(n, group.markup_min))
        put("markup_max", np.full(n, group.markup_max))
        put("confidence", np.clip(quality + group.confidence_bias + boost + noise, 0.0, 1.0))
        put("has_sample", rng.random(n) < group.sample_probability)
        promised_s = rng.integers(
            group.turnaround_min_ms // 1000, group.turnaround_max_ms // 1000 + 1, n
        )
        put("promised_ms", promised_s * 1000)
        put("speed_ms", promised_s * 1000.0 / group.turnaround_margin)
        put("turnaround_noise_sd", np.full(n, group.turnaround_noise_sd))
        put("certified", rng.random(n) < group.certified_probability)
        put("enters_on_profit", np.full(n, group.enters_on_profit))
        put("bid_probability", np.full(n, group.bid_probability))
        put("category", rng.integers(0, categories, n).astype(np.int32))
        put("join_tick", rng.integers(0, group.join_tick_max + 1, n))
        put("quality_factor", np.full(n, group.quality_factor))
        for name in strategies.PARAM_NAMES:
            put(name, np.full(n, knobs.get(name, 0.0) if name in spec.defaults else 0.0))
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    order = np.argsort(cols["category"], kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    # the group's generic quality_factor multiplies the quality once, here
    cols["quality"] = cols["quality"] * cols.pop("quality_factor")
    # A provider knows its own success probability; it expects to lose the disputes it would
    # lose (probability dispute_probability × (1 − quality)) on the work it delivers.
    q = np.clip(cols["quality"], EXPECTED_SUCCESS_MIN, 1.0)
    cols["expected_paid"] = q * (1.0 - params.market.dispute_probability * (1.0 - q))
    size = np.bincount(cols["category"], minlength=categories).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    population = Population(
        **{f.name: cols[f.name] for f in dataclasses.fields(Population) if f.name in cols},
        params={name: cols[name] for name in strategies.PARAM_NAMES},
        category_start=start,
        category_size=size,
    )
    n_total = population.size
    state = MarketState(
        tick=0,
        record=_core.ReputationTally.empty(n_total),
        identity_id=np.arange(1, n_total + 1, dtype=np.int64),
        markup_shift=np.zeros(n_total),
        active=~population.enters_on_profit,
        profit_minor=np.zeros(n_total),
        contracts=np.zeros(n_total),
        next_identity_id=n_total + 1,
        next_work_id=1,
        next_bid_id=1,
    )
    return population, state


def work_counts(params: ScenarioParams, ticks: I64) -> I64:
    """Work items posted at each tick: work_per_tick × (1 + growth)^tick, capped."""
    m = params.market
    grown = m.work_per_tick * np.power(1.0 + m.work_growth_per_tick, ticks.astype(np.float64))
    return np.asarray(np.minimum(np.rint(grown), m.work_per_tick_max), dtype=np.int64)


def _draw_bidders(
    rng: np.random.Generator, slice_size: I64, bid_probability_max: float
) -> tuple[I64, I64]:
    # Each provider of the work's category slice bids independently with probability p: the
    # bidders' positions in the slice are a Bernoulli process, i.e. cumulative geometric gaps.
    # A row of gaps that ends inside its slice is topped up (exactly, from the same stream).
    n_work = slice_size.size
    size_max = int(slice_size.max()) if n_work else 0
    p = bid_probability_max
    mean = p * size_max
    width = max(1, int(mean + 2.0 * math.sqrt(mean * (1.0 - p) + 1.0) + 4.0))
    inverse_log = 1.0 / math.log1p(-p) if p < 1.0 else 0.0

    def gaps(rows: int) -> npt.NDArray[np.int32]:
        uniform = rng.random((rows, width), dtype=np.float32)
        if p >= 1.0:
            return np.ones((rows, width), np.int32)
        # inverse CDF of the geometric law: floor(log(1 − U) / log(1 − p)) + 1; float32 log
        # is vectorised (log1p is not), and 1 − U lies in (0, 1]
        np.subtract(np.float32(1.0), uniform, out=uniform)
        np.log(uniform, out=uniform)
        uniform *= np.float32(inverse_log)
        gap = uniform.astype(np.int32)
        gap += 1
        return gap

    position = np.cumsum(gaps(n_work), axis=1, dtype=np.int32)
    inside = position <= slice_size[:, None]
    chunks = [(np.arange(n_work), inside.sum(axis=1), position[inside])]
    short = np.flatnonzero(position[:, -1] < slice_size)
    last = position[short, -1]
    for _ in range(_GAP_REFILLS_MAX):
        if short.size == 0:
            break
        more = last[:, None] + np.cumsum(gaps(short.size), axis=1, dtype=np.int32)
        inside = more <= slice_size[short, None]
        chunks.append((short, inside.sum(axis=1), more[inside]))
        keep = more[:, -1] < slice_size[short]
        short, last = short[keep], more[keep, -1]
    assert short.size == 0, "bid draw did not cover the slice"
    return _interleave(chunks, n_work)


def _interleave(
    chunks: list[tuple[I64, npt.NDArray[np.int64], npt.NDArray[np.int32]]], n_work: int
) -> tuple[I64, I64]:
    # Rows' positions arrive in chunks (the first draw, then top-ups of a few rows, each chunk
    # continuing where the row's previous one ended); place each chunk after its row's earlier
    # ones, so that bids stay grouped by work and ordered by position without a sort.
    if len(chunks) == 1:
        rows, counts, positions = chunks[0]
        return np.repeat(rows, counts), positions.astype(np.int64) - 1
    per_row = np.zeros(n_work, np.int64)
    for rows, counts, _ in chunks:
        per_row[rows] += counts
    row_start = np.cumsum(per_row) - per_row
    filled = np.zeros(n_work, np.int64)
    total = int(per_row.sum())
    out_position = np.empty(total, np.int64)
    for rows, counts, positions in chunks:
        row_of = np.repeat(rows, counts)
        rank_in_chunk = np.arange(positions.size) - np.repeat(np.cumsum(counts) - counts, counts)
        out_position[row_start[row_of] + filled[row_of] + rank_in_chunk] = positions
        filled[rows] += counts
    assert bool(np.all(filled == per_row))
    return np.repeat(np.arange(n_work, dtype=np.int64), per_row), out_position - 1


@dataclass(frozen=True, slots=True)
class _Bids:
    work: I64  # local work index, non-decreasing
    tick: I64  # local tick index
    provider: I64  # slot
    price_minor: I64
    submitted_at_ms: I64
    bid_id: I64
    success_probability: F64
    cost_factor: F64

    def take(self, keep: B1 | I64) -> _Bids:
        return _Bids(*(getattr(self, f.name)[keep] for f in dataclasses.fields(_Bids)))


@dataclass(frozen=True, slots=True)
class _Work:
    tick: I64  # local tick index
    consumer: I64
    category: I64
    budget_min_minor: I64
    budget_max_minor: I64
    large: B1
    size: F64  # units of work: 1, or large_work_multiplier for a large item
    success_uniform: F64
    turnaround_normal: F64  # the realised turnaround's noise, N(0, 1)
    dispute_uniform: F64
    upheld_uniform: F64


def _draw_work(streams: Streams, params: ScenarioParams, counts: I64) -> _Work:
    m = params.market
    rng = streams.work
    n = int(counts.sum())
    budget = rng.uniform(m.budget_min_major, m.budget_max_major, n)
    large = rng.random(n) < m.large_work_probability
    budget_max = np.maximum(_minor(np.where(large, budget * m.large_work_multiplier, budget)), 1)
    outcomes = streams.outcomes
    return _Work(
        tick=np.repeat(np.arange(counts.size, dtype=np.int64), counts),
        consumer=rng.integers(1, m.consumers + 1, n),
        category=rng.integers(0, m.categories, n),
        budget_min_minor=np.floor(budget_max * m.budget_floor_fraction).astype(np.int64),
        budget_max_minor=budget_max,
        large=large,
        size=np.where(large, m.large_work_multiplier, 1.0),
        success_uniform=outcomes.random(n),
        turnaround_normal=outcomes.standard_normal(n),
        dispute_uniform=outcomes.random(n),
        upheld_uniform=outcomes.random(n),
    )


@dataclass(frozen=True, slots=True)
class Draws:
    """A block's randomness (work, bidders, markups, submission times, thinning, outcome
    uniforms). It depends on the parameters, the population and the streams only, never on the
    market state or the weights, so a producer thread can draw the next block ahead
    (`draw_block`) while `step` clears the current one: the results are identical."""

    tick: int  # the block's first tick
    ticks: int
    work: _Work
    work_of_bid: I64
    provider: I64  # slot
    markup_uniform: F64
    submitted_offset_ms: I64
    thin: F64 | None  # drawn only when the population needs thinning
    strategy_uniform: F64 | None = None  # one per slot: the bandit's arm draw


def block_ticks_at(params: ScenarioParams, tick: int) -> int:
    """The number of ticks of the block starting at `tick`."""
    return min(params.block_ticks, params.ticks - tick)


def draw_block(
    streams: Streams, params: ScenarioParams, population: Population, tick: int
) -> Draws:
    """Draws the randomness of the block starting at `tick` (blocks must be drawn in order)."""
    n_ticks = block_ticks_at(params, tick)
    assert n_ticks > 0
    counts = work_counts(params, tick + np.arange(n_ticks, dtype=np.int64))
    work = _draw_work(streams, params, counts)
    rng = streams.bids
    pop = population
    p_max = float(pop.bid_probability.max())
    work_of_bid, position = _draw_bidders(rng, pop.category_size[work.category], p_max)
    if pop.category_size.size == 1:
        provider = position
    else:
        provider = pop.category_start[work.category[work_of_bid]] + position
    n = provider.size
    markup_uniform = rng.random(n)
    window_ms = np.float32(params.market.bid_window_ms)
    submitted_offset = (rng.random(n, dtype=np.float32) * window_ms).astype(np.int64)
    # float32 rounding may reach the window's end: a bid must arrive before the close
    np.minimum(submitted_offset, params.market.bid_window_ms - 1, out=submitted_offset)
    needs_thinning = bool((pop.bid_probability < p_max).any() or (pop.join_tick > 0).any())
    thin = rng.random(n) if needs_thinning else None  # static: population only
    strategy_uniform = streams.strategy.random(pop.size)
    return Draws(
        tick,
        n_ticks,
        work,
        work_of_bid,
        provider,
        markup_uniform,
        submitted_offset,
        thin,
        strategy_uniform,
    )


def _draw_bids(
    draws: Draws,
    params: ScenarioParams,
    population: Population,
    state: MarketState,
) -> tuple[_Bids, F64]:
    pop = population
    work = draws.work
    work_of_bid, provider = draws.work_of_bid, draws.provider
    markup_uniform, submitted_offset = draws.markup_uniform, draws.submitted_offset_ms
    p_max = float(pop.bid_probability.max())
    keep: B1 | None = None  # None: every drawn bid so far
    if draws.thin is not None:
        keep = draws.thin * p_max < pop.bid_probability[provider]
        keep &= pop.join_tick[provider] <= state.tick + work.tick[work_of_bid]
    if not bool(state.active.all()):
        # providers out of the market (exited, or not yet entered) place no bid; a mask over
        # the same draws, so common random numbers hold
        present = state.active[provider]
        keep = present if keep is None else keep & present
    markup_low = pop.markup_min + state.markup_shift  # per provider, then per bid
    # a bandit's markup is its arm's, exactly (the shift puts markup_min on it)
    bandit = pop.strategy_code == strategies.CODE["bandit"]
    markup_span = np.where(bandit, 0.0, pop.markup_max - pop.markup_min)
    if _constant(markup_low) and _constant(markup_span):
        # one markup range for all (e.g. the reference market): the same arithmetic on scalars
        markup = markup_uniform * markup_span[0]
        markup += markup_low[0]
    else:
        markup = markup_uniform * markup_span[provider]
        markup += markup_low[provider]
    adaptive = _has_bidding_rules(pop)
    if adaptive:
        # strategies decide at block start, from the tiers the core assigns
        tier = reputation_at(params, pop, state.record, int(close_ms(params, state.tick))).tier
        farming_done = strategies.farming_done(pop.strategy_code, tier, pop.params)
        code = pop.strategy_code[provider]
        done = farming_done[provider]
        allowed = strategies.bids_allowed(code, done, work.large[work_of_bid])
        keep = allowed if keep is None else keep & allowed
        bid_params = {k: v[provider] for k, v in pop.params.items()}
        designated = strategies.ring_designated(
            pop.strategy_code, provider, state.next_work_id + work_of_bid
        )
        markup += strategies.markup_adjustment(code, done, bid_params, designated)
        defect = strategies.defecting(code, state.tick + work.tick[work_of_bid], bid_params)
    # the auctions each provider could bid on (before its price meets the budget): the
    # bandit's reward is its profit per such auction
    present_bids = provider if keep is None else provider[keep]
    opportunities = np.bincount(present_bids, minlength=pop.size).astype(np.float64)
    # The cost of the work: the unit cost × the item's size. The price marks it up: on cost
    # alone ("cost_plus", the reference market), or on the break-even price that covers the
    # cost after the fee and the expected unpaid (failed or refunded) work ("break_even").
    markup += 1.0
    price_f = pop.cost_minor.astype(np.float64)[provider]
    price_f *= work.size[work_of_bid]
    if params.market.pricing == "break_even":
        fee_share = params.scoring.fee_bps / 10_000
        price_f /= (1.0 - fee_share) * pop.expected_paid[provider]
    price_f *= markup
    np.rint(price_f, out=price_f)
    np.maximum(price_f, 1.0, out=price_f)
    # spec: bids above the work's budget are dropped (a provider does not bid over budget)
    within = price_f <= work.budget_max_minor[work_of_bid]
    keep = within if keep is None else keep & within
    kept = np.flatnonzero(keep)
    work_k = work_of_bid[kept]
    price_k = price_f[kept].astype(np.int64)
    bid_tick = work.tick[work_k]
    provider_k = provider[kept]
    if adaptive:
        success_probability, cost_factor = strategies.delivery(
            code[kept],
            done[kept],
            pop.quality[provider_k],
            {k: v[kept] for k, v in bid_params.items()},
            defect[kept],
        )
    else:
        success_probability, cost_factor = pop.quality[provider_k], np.ones(kept.size)
    tick_ms = params.market.tick_ms
    work_start_ms = (state.tick + work.tick) * tick_ms  # per work item, then per bid
    submitted_at_ms = work_start_ms[work_k]
    submitted_at_ms += submitted_offset[kept]
    return _Bids(
        work=work_k,
        tick=bid_tick,
        provider=provider_k,
        price_minor=price_k,
        submitted_at_ms=submitted_at_ms,
        bid_id=np.arange(state.next_bid_id, state.next_bid_id + kept.size, dtype=np.int64),
        success_probability=success_probability,
        cost_factor=cost_factor,
    ), opportunities


def _constant(values: F64) -> bool:
    return bool(values.size == 0 or (values == values[0]).all())


def _has_bidding_rules(pop: Population) -> bool:
    # Honest, overconfident, learning, bandit, sybil, self-dealing and certificate-farming
    # providers bid by the generic rule; low-ballers, farmers, rings and on-off providers change
    # which work they bid on, their price or their delivery.
    return strategies.has_bidding_rules(pop.strategy_code)


@dataclass(frozen=True, slots=True)
class _Cleared:
    winner_of_work: I64  # bid index per work item, -1 when no bid
    paid: B1  # per work item: delivered and not refunded (False when not cleared)
    kind: npt.NDArray[np.uint8]  # per work item: the contract's OutcomeKind (cleared only)
    at_ms: I64  # per work item: when the outcome was recorded
    cost_minor: I64  # per work item: the winner's cost (cleared only)
    price_minor: I64  # per work item: the contract price, the core's payment rule (cleared only)
    awarded_ms: I64  # per work item (cleared only): awarded, completed or given up
    completed_ms: I64
    delivered: B1
    disputed: B1
    refunded: B1
    scored: Columns  # per bid: the six components, total, rank, is_winner, reject_reason
    jobs: F64  # (ticks, providers) awards per tick
    wins: F64  # (ticks, providers) successful contracts per tick (reputation's definition)
    reputation_rows: Columns | None  # the reputation table's rows of the block
    final: _core.ReputationScores  # every slot's reputation at the next block's first close
    record: _core.ReputationTally  # the record after the block
    rounds: int  # ranking passes over the block's bids (1: tick by tick)
    wash_fee_minor: F64 | None = None  # per slot: fees the block's wash trades cost
    wash_trades: int = 0
    wash_rows: Columns | None = None  # every attempted wash trade (BlockLog.wash_trades)


_SCORED_COLUMNS = (
    ("price_score", np.float64),
    ("trust_score", np.float64),
    ("confidence_score", np.float64),
    ("sample_score", np.float64),
    ("sla_score", np.float64),
    ("certification_score", np.float64),
    ("total", np.float64),
    ("rank", np.int32),
    ("is_winner", np.bool_),
    ("reject_reason", np.uint8),
)


def tick_batch(
    params: ScenarioParams,
    pop: Population,
    scores: _core.ReputationScores,
    *,
    tick: int,
    auction: I64,
    provider: I64,
    price_minor: I64,
    submitted_at_ms: I64,
    bid_id: I64,
    budget_min_minor: I64,
    budget_max_minor: I64,
    claim: F64 | None = None,
) -> _core.BidBatch:
    """One tick's bids as the exchange's BidBatch: the columns serve/market/evaluation.py builds for
    each auction, from the slots' reputations, tiers and records at the windows' close.
    `claim` is every slot's stated confidence now (a bandit's changes; default: the
    population's)."""
    m = params.market
    n = provider.size
    opens_ms = tick * m.tick_ms
    successes, contracts = _successes(scores)[provider], scores.contracts[provider]
    stated = pop.confidence if claim is None else claim
    confidence = _core.calibrated_confidence(
        stated[provider], successes, contracts, params.rules.calibration
    )
    return _core.BidBatch(
        auction_id=auction,
        bid_id=bid_id,
        provider_id=provider,
        price_minor=price_minor,
        currency_matches=np.ones(n, np.bool_),
        budget_min_minor=budget_min_minor,
        budget_max_minor=budget_max_minor,
        trust=scores.score[provider],
        confidence=confidence,
        has_sample=pop.has_sample[provider],
        sample_quality=np.full(n, _core.SAMPLE_PROVIDED_QUALITY),
        turnaround_ms=pop.promised_ms[provider],
        required_turnaround_ms=np.full(n, m.required_turnaround_ms, np.int64),
        hard_limit_turnaround_ms=np.full(n, m.hard_limit_turnaround_ms, np.int64),
        certified_matches=pop.active_certificates[provider],
        tier=scores.tier[provider],
        submitted_at_ms=submitted_at_ms,
        window_opens_ms=np.full(n, opens_ms, np.int64),
        window_closes_ms=np.full(n, opens_ms + m.bid_window_ms, np.int64),
        eligible=np.ones(n, np.bool_),
    )


def realised_turnaround_ms(params: ScenarioParams, pop: Population, slot: I64, normal: F64) -> I64:
    """How long the winner takes: speed × lognormal noise, in ms, inside the tick (so that the
    outcome is evidence at the next tick's close)."""
    m = params.market
    longest = m.tick_ms - m.bid_window_ms - _TICK_MARGIN_MS
    taken = pop.speed_ms[slot] * np.exp(pop.turnaround_noise_sd[slot] * normal)
    return np.clip(np.rint(taken), 1_000, longest).astype(np.int64)


def _clear_block(
    params: ScenarioParams,
    weights: _core.Weights,
    pop: Population,
    state: MarketState,
    work: _Work,
    bids: _Bids,
    n_ticks: int,
) -> _Cleared:
    # Tick by tick: the tick's auctions (a contiguous run of bids: bids are grouped by work,
    # work ordered by tick) are scored by the core exactly as the exchange scores them (one
    # BidBatch, score_bids) at the windows' close, with every slot's reputation from all
    # earlier outcomes (reputation_scores); the winners then do the work, whose outcomes (the
    # core's outcome_kinds) are the next tick's evidence.
    n_providers = pop.size
    n_work = work.tick.size
    n_bids = bids.bid_id.size
    m = params.market
    with_ranks = params.log.bids == "all"
    log_reputation = params.log.reputation == "changes"
    tick_bounds = np.searchsorted(bids.tick, np.arange(n_ticks + 1, dtype=np.int64))
    scored_cols: Columns = {name: np.zeros(n_bids, dtype) for name, dtype in _SCORED_COLUMNS}
    winner_of_work = np.full(n_work, -1, np.int64)
    paid = np.zeros(n_work, bool)
    kind_of_work = np.zeros(n_work, np.uint8)
    at_of_work = np.zeros(n_work, np.int64)
    cost_of_work = np.zeros(n_work, np.int64)
    price_of_work = np.zeros(n_work, np.int64)
    awarded_of_work = np.zeros(n_work, np.int64)
    completed_of_work = np.zeros(n_work, np.int64)
    delivered_of_work = np.zeros(n_work, bool)
    disputed_of_work = np.zeros(n_work, bool)
    refunded_of_work = np.zeros(n_work, bool)
    jobs = np.zeros((n_ticks, n_providers))
    wins = np.zeros((n_ticks, n_providers))
    record = state.record
    reputation_rows: list[Columns] = []
    scores = None
    wash_slot, wash_price, wash_fee, wash_admitted = _wash_trades(params, pop)
    wash_fee_minor = np.zeros(n_providers)
    wash_count = 0
    wash_rows: list[Columns] = []
    washed_in = np.zeros((n_ticks, n_providers), bool)  # per tick: slots a wash trade moved
    for t in range(n_ticks + 1):
        tick = state.tick + t
        start, stop = (int(tick_bounds[t]), int(tick_bounds[t + 1])) if t < n_ticks else (0, 0)
        if t < n_ticks and start == stop and not (log_reputation and t > 0):
            continue
        scores = reputation_at(params, pop, record, int(close_ms(params, tick)))
        if log_reputation and t > 0:
            slot = np.flatnonzero((jobs[t - 1] > 0) | washed_in[t - 1])
            reputation_rows.append(_reputation_rows(state, scores, tick - 1, slot))
        if t == n_ticks or start == stop:
            continue
        rows = slice(start, stop)
        work_rows = bids.work[rows]
        batch = tick_batch(
            params,
            pop,
            scores,
            tick=tick,
            auction=work_rows,
            provider=bids.provider[rows],
            price_minor=bids.price_minor[rows],
            submitted_at_ms=bids.submitted_at_ms[rows],
            bid_id=bids.bid_id[rows],
            budget_min_minor=work.budget_min_minor[work_rows],
            budget_max_minor=work.budget_max_minor[work_rows],
            claim=state.claim,
        )
        scored = _core.score_bids(
            batch, weights, now_ms=int(close_ms(params, tick)), with_ranks=with_ranks
        )
        assert isinstance(scored, _core.ScoredBids), scored
        for name, _ in _SCORED_COLUMNS:
            scored_cols[name][rows] = getattr(scored, name)
        won = start + np.flatnonzero(scored.is_winner)
        work_won = bids.work[won]
        winner_of_work[work_won] = won
        # what the winner is paid: its bid (first score) or the runner-up's score's price
        price = _core.contract_prices(
            batch.auction_id,
            scored,
            weights,
            params.rules.payment_rule,
            price_minor=batch.price_minor,
            budget_min_minor=batch.budget_min_minor,
            budget_max_minor=batch.budget_max_minor,
        )
        price_of_work[work_won] = price
        slot = bids.provider[won]
        # the contract: awarded at the close, delivered (or given up) after the realised
        # turnaround, settled at once; a dispute is raised a second later and resolved a
        # second after that (refund with probability 1 − quality)
        awarded_ms = np.full(won.size, close_ms(params, tick), np.int64)
        delivered = work.success_uniform[work_won] < bids.success_probability[won]
        completed_ms = awarded_ms + realised_turnaround_ms(
            params, pop, slot, work.turnaround_normal[work_won]
        )
        disputed = delivered & (work.dispute_uniform[work_won] < m.dispute_probability)
        refunded = disputed & (work.upheld_uniform[work_won] >= pop.quality[slot])
        kind = _core.outcome_kinds(
            delivered=delivered,
            awarded_at_ms=awarded_ms,
            completed_at_ms=completed_ms,
            promised_turnaround_ms=pop.promised_ms[slot],
            disputed=disputed,
            refunded=refunded,
        )
        at_ms = completed_ms + np.where(disputed, 2 * _DISPUTE_STEP_MS, 0)
        # Only contracts the exchange counts as evidence move reputation (aex/core/market.py
        # counts_as_evidence: a whole unit and a fee of at least one minor unit).
        evidence = _core.evidence_mask(price, currency=SIM_CURRENCY)
        new_outcomes = _core.Outcomes(
            slot[evidence], at_ms[evidence], kind[evidence], price[evidence]
        )
        if wash_slot.size:
            # self-dealers' wash trades of the tick (present providers only): awarded at the
            # close, delivered a second later, settled; each costs its owner the fee
            present = state.active[wash_slot] & (pop.join_tick[wash_slot] <= tick)
            here = present & wash_admitted
            traded = wash_slot[here]
            wash_count += int(traded.size)
            wash_fee_minor += np.bincount(
                traded, weights=wash_fee[here].astype(np.float64), minlength=n_providers
            )
            counts = _core.evidence_mask(wash_price[here], currency=SIM_CURRENCY)
            washed = traded[counts]
            washed_in[t, washed] = True
            tried = np.flatnonzero(present)
            trade_counts = np.zeros(tried.size, bool)
            trade_counts[wash_admitted[tried]] = counts
            trade_fee = np.where(wash_admitted[tried], wash_fee[tried], 0)
            wash_rows.append(
                {
                    "tick": np.full(tried.size, tick, np.int32),
                    "slot": wash_slot[tried].astype(np.int32),
                    "provider_id": state.identity_id[wash_slot[tried]],
                    "price_minor": wash_price[tried],
                    "fee_minor": trade_fee.astype(np.int64),
                    "awarded_at_ms": np.full(tried.size, close_ms(params, tick), np.int64),
                    "outcome_at_ms": np.full(
                        tried.size, close_ms(params, tick) + _DISPUTE_STEP_MS, np.int64
                    ),
                    "admitted": wash_admitted[tried],
                    "evidence": trade_counts,
                }
            )
            new_outcomes = _core.Outcomes(
                np.concatenate([new_outcomes.provider_index, washed]),
                np.concatenate(
                    [
                        new_outcomes.at_ms,
                        np.full(washed.size, close_ms(params, tick) + _DISPUTE_STEP_MS),
                    ]
                ),
                np.concatenate(
                    [new_outcomes.kind, np.full(washed.size, _core.OutcomeKind.SUCCESS, np.uint8)]
                ),
                np.concatenate([new_outcomes.value_minor, wash_price[here][counts]]),
            )
        record = _core.tally_outcomes(
            record,
            new_outcomes,
            now_ms=int(close_ms(params, tick + 1)),
            params=params.rules.reputation,
        )
        kind_of_work[work_won], at_of_work[work_won] = kind, at_ms
        awarded_of_work[work_won], completed_of_work[work_won] = awarded_ms, completed_ms
        delivered_of_work[work_won], disputed_of_work[work_won] = delivered, disputed
        refunded_of_work[work_won] = refunded
        paid[work_won] = delivered & ~refunded
        cost = np.rint(pop.cost_minor[slot] * work.size[work_won] * bids.cost_factor[won])
        cost_of_work[work_won] = cost.astype(np.int64)
        successful = np.isin(kind, _SUCCESSFUL_KINDS)
        jobs[t] = np.bincount(slot, minlength=n_providers)
        wins[t] = np.bincount(slot, weights=successful, minlength=n_providers)
    rows_out = _concat(reputation_rows) if log_reputation else None
    assert scores is not None  # the loop's last pass (t == n_ticks) always computes them
    return _Cleared(
        winner_of_work,
        paid,
        kind_of_work,
        at_of_work,
        cost_of_work,
        price_of_work,
        awarded_of_work,
        completed_of_work,
        delivered_of_work,
        disputed_of_work,
        refunded_of_work,
        scored_cols,
        jobs,
        wins,
        rows_out,
        scores,
        record,
        1,
        wash_fee_minor,
        wash_count,
        _concat(wash_rows),
    )


def _wash_trades(params: ScenarioParams, pop: Population) -> tuple[I64, I64, I64, B1]:
    """The wash trades one tick's self-dealers attempt: (slot, price, fee, admitted) per
    trade. A trade happens only where the core's bid admission lets its owner's consumer
    award it (not under the provider's own tenant: admitted is False, and it trades nothing);
    the fee is the core's split of the price."""
    dealer = np.flatnonzero(pop.strategy_code == strategies.CODE["self_dealing"])
    if dealer.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, np.zeros(0, np.bool_)
    same_tenant = pop.params["wash_same_tenant"][dealer] >= 0.5
    admitted = np.array(
        [_core.self_dealing_admitted(same_tenant=bool(v)) for v in (False, True)], np.bool_
    )[same_tenant.astype(np.int64)]
    per_tick = np.maximum(np.rint(pop.params["wash_per_tick"][dealer]).astype(np.int64), 0)
    slot = np.repeat(dealer, per_tick)
    price = np.repeat(_minor(pop.params["wash_price_major"][dealer]), per_tick)
    fee, _ = _core.split_fee_columns(price, fee_bps=params.scoring.fee_bps)
    return (
        slot.astype(np.int64),
        price.astype(np.int64),
        fee.astype(np.int64),
        np.repeat(admitted, per_tick),
    )


_SUCCESSFUL_KINDS = np.array(
    [_core.OutcomeKind.SUCCESS, _core.OutcomeKind.LATE, _core.OutcomeKind.DISPUTE_WON], np.uint8
)


def _concat(parts: list[Columns]) -> Columns | None:
    if not parts:
        return None
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _reputation_rows(
    state: MarketState, scores: _core.ReputationScores, tick: int, slot: I64
) -> Columns:
    # The reputation of the slots that had contracts in `tick`, as the next tick sees it.
    return {
        "tick": np.full(slot.size, tick, np.int32),
        "provider_id": state.identity_id[slot],
        "score": scores.score[slot],
        "contracts": scores.contracts[slot],
        "successes": _successes(scores)[slot].astype(np.int64),
        "tier": scores.tier[slot],
    }


def _log_tables(
    params: ScenarioParams,
    pop: Population,
    state: MarketState,
    work: _Work,
    bids: _Bids,
    cl: _Cleared,
) -> tuple[dict[str, Columns], int, F64]:
    tick0 = state.tick
    n_work = work.tick.size
    work_id = state.next_work_id + np.arange(n_work, dtype=np.int64)
    abs_tick = (tick0 + work.tick).astype(np.int32)
    tables: dict[str, Columns] = {
        "work": {
            "work_id": work_id,
            "tick": abs_tick,
            "consumer_id": work.consumer,
            "category": work.category.astype(np.int32),
            "budget_min_minor": work.budget_min_minor,
            "budget_max_minor": work.budget_max_minor,
            "large": work.large,
        }
    }
    sc = cl.scored
    if params.log.bids != "none":
        shown = slice(None) if params.log.bids == "all" else np.flatnonzero(sc["is_winner"])
        tables["bids"] = {
            "work_id": work_id[bids.work[shown]],
            "bid_id": bids.bid_id[shown],
            "provider_id": state.identity_id[bids.provider[shown]],
            "tick": (tick0 + bids.tick[shown]).astype(np.int32),
            "price_minor": bids.price_minor[shown],
            "submitted_at_ms": bids.submitted_at_ms[shown],
            **{name: sc[name][shown] for name, _ in _SCORED_COLUMNS},
        }
    cleared = np.flatnonzero(cl.winner_of_work >= 0)
    winning = cl.winner_of_work[cleared]
    winner_slot = bids.provider[winning]
    winner_id = state.identity_id[winner_slot]
    price = cl.price_minor[cleared]  # the contract price (the bid row keeps the bid price)
    tables["awards"] = {
        "work_id": work_id[cleared],
        "bid_id": bids.bid_id[winning],
        "provider_id": winner_id,
        "tick": abs_tick[cleared],
        "price_minor": price,
        "total": sc["total"][winning],
    }
    cost = cl.cost_minor[cleared]
    ok = cl.paid[cleared]
    tables["outcomes"] = {
        "work_id": work_id[cleared],
        "provider_id": winner_id,
        "tick": abs_tick[cleared],
        "success": ok,
        "cost_minor": cost,
    }
    # spec: the 15% fee on settled work; the core splits price into fee and payout. A refunded
    # contract (a lost dispute) returns both, so it settles nothing.
    fee, payout = _core.split_fee_columns(price[ok], fee_bps=params.scoring.fee_bps)
    tables["settlements"] = {
        "work_id": work_id[cleared][ok],
        "provider_id": winner_id[ok],
        "tick": abs_tick[cleared][ok],
        "price_minor": price[ok],
        "fee_minor": fee,
        "payout_minor": payout,
    }
    if cl.reputation_rows is not None:
        tables["reputation"] = cl.reputation_rows
    # realised profit per slot in this block: payouts − costs of every contract
    paid_out = np.bincount(winner_slot[ok], weights=payout.astype(np.float64), minlength=pop.size)
    spent = np.bincount(winner_slot, weights=cost.astype(np.float64), minlength=pop.size)
    profit = np.asarray(paid_out - spent, dtype=np.float64)
    fee_total = int(fee.sum())
    if cl.wash_fee_minor is not None:
        # a wash trade's price goes from the owner's consumer to its provider; the fee stays
        # with the platform: the owner's cost
        profit -= cl.wash_fee_minor
        fee_total += int(cl.wash_fee_minor.sum())
    return tables, fee_total, profit


def provider_rows(pop: Population, identity: I64, slots: I64, joined_tick: int | None) -> Columns:
    """Rows of the `providers` table for these identities (slots index the population)."""
    return {
        "provider_id": identity,
        "slot": slots.astype(np.int32),
        "strategy": np.array(strategies.NAMES, dtype=object)[pop.strategy_code[slots]],
        "quality": pop.quality[slots],
        "cost_minor": pop.cost_minor[slots],
        "confidence": pop.confidence[slots],
        "certified": pop.certified[slots],
        "category": pop.category[slots],
        "joined_tick": (
            pop.join_tick[slots] if joined_tick is None else np.full(slots.size, joined_tick)
        ).astype(np.int32),
    }


def _adapt(
    params: ScenarioParams,
    pop: Population,
    state: MarketState,
    bids: _Bids,
    cl: _Cleared,
    profit: F64,
    opportunities: F64,
) -> tuple[MarketState, Columns | None]:
    # Strategies react at the block boundary: learners move their markup; whitewashers whose
    # record went bad re-register under a fresh identity with an empty record; providers
    # losing money leave, and entrants come in while the market pays.
    n = pop.size
    bid_count = np.bincount(bids.provider, minlength=n).astype(np.float64)
    win_count = cl.jobs.sum(axis=0)
    shift = strategies.learned_markup_shift(
        pop.strategy_code, state.markup_shift, bid_count, win_count, pop.params
    )
    n_ticks = cl.jobs.shape[0]
    scores = cl.final  # at close_ms(state.tick + n_ticks), from cl.record
    held = scores.contracts.astype(np.float64)
    reset = np.flatnonzero(
        strategies.whitewash(pop.strategy_code, scores.score, held, pop.params)
        | strategies.sybil_rotate(pop.strategy_code, held, pop.params)
    )
    log_weight = state.bandit_log_weight
    if log_weight is not None and state.bandit_arm is not None:
        log_weight = strategies.bandit_update(
            pop.strategy_code,
            log_weight,
            state.bandit_arm,
            profit,
            opportunities,
            pop.cost_minor.astype(np.float64),
            pop.params,
        )
    identity = state.identity_id.copy()
    new_ids = state.next_identity_id + np.arange(reset.size, dtype=np.int64)
    identity[reset] = new_ids
    record = cl.record.without_providers(reset) if reset.size else cl.record
    profit_minor = state.profit_minor + profit
    contracts = state.contracts + win_count
    active = state.active.copy()
    m = params.market
    if m.exit_min_contracts > 0:
        active &= ~((contracts >= m.exit_min_contracts) & (profit_minor < 0))
    dormant = np.flatnonzero(pop.enters_on_profit & ~state.active & (contracts == 0))
    block_jobs = win_count[state.active].sum()
    if dormant.size and block_jobs > 0 and profit[state.active].sum() > 0:
        active[dormant[: m.entry_per_block]] = True
    new_state = MarketState(
        tick=state.tick + n_ticks,
        record=record,
        identity_id=identity,
        markup_shift=shift,
        active=active,
        profit_minor=profit_minor,
        contracts=contracts,
        next_identity_id=state.next_identity_id + reset.size,
        next_work_id=state.next_work_id + cl.paid.size,
        next_bid_id=state.next_bid_id + bids.bid_id.size,
        claim=state.claim,
        bandit_log_weight=log_weight,
        bandit_arm=state.bandit_arm,
    )
    rows = provider_rows(pop, new_ids, reset, state.tick + n_ticks) if reset.size else None
    return new_state, rows


def _choose_arms(pop: Population, state: MarketState, draws: Draws) -> MarketState:
    # Bandits pick the block's arm (markup, stated confidence) from their EXP3 distribution
    # with the block's strategy uniforms; their markup shift and claim follow the arm.
    bandit = pop.strategy_code == strategies.CODE["bandit"]
    if not bool(bandit.any()) or draws.strategy_uniform is None:
        return state
    n = pop.size
    log_weight = state.bandit_log_weight
    if log_weight is None:
        log_weight = np.zeros((n, strategies.BANDIT_ARMS))
    chosen = strategies.bandit_choose(log_weight, draws.strategy_uniform, pop.params)
    arm = np.where(bandit, chosen, 0)
    markup, confidence = strategies.bandit_arms(pop.params)
    rows = np.arange(n)
    shift = np.where(bandit, markup[rows, arm] - pop.markup_min, state.markup_shift)
    base_claim = pop.confidence if state.claim is None else state.claim
    claim = np.where(bandit, confidence[rows, arm], base_claim)
    return dataclasses.replace(
        state, markup_shift=shift, claim=claim, bandit_log_weight=log_weight, bandit_arm=arm
    )


def step(
    streams: Streams,
    state: MarketState,
    params: ScenarioParams,
    population: Population,
    weights: _core.Weights,
    draws: Draws | None = None,
) -> tuple[MarketState, BlockLog]:
    """Advances the market by one block of min(block_ticks, ticks left) ticks.

    Draws the block's work, bids and outcome uniforms (or takes `draws`, the same block drawn
    ahead by `draw_block`), scores every auction with the core's score_bids under exact
    per-tick reputation (reputation_scores), records outcomes through the core's
    outcome_kinds, settles through the core's fee split, and lets strategies adapt.
    Returns the new state and the block's market-log rows.
    """
    if draws is None:
        draws = draw_block(streams, params, population, state.tick)
    assert draws.tick == state.tick, "draws belong to another block"
    n_ticks = draws.ticks
    work = draws.work
    state = _choose_arms(population, state, draws)
    bids, opportunities = _draw_bids(draws, params, population, state)
    cleared = _clear_block(params, weights, population, state, work, bids, n_ticks)
    tables, fee_minor, profit = _log_tables(params, population, state, work, bids, cleared)
    new_state, new_providers = _adapt(
        params, population, state, bids, cleared, profit, opportunities
    )
    if new_providers is not None:
        tables["providers"] = new_providers
    awards = int((cleared.winner_of_work >= 0).sum())
    done = np.flatnonzero(cleared.winner_of_work >= 0)
    contracts = {
        "work_id": state.next_work_id + done,
        "bid_id": bids.bid_id[cleared.winner_of_work[done]],
        "awarded_at_ms": cleared.awarded_ms[done],
        "completed_at_ms": cleared.completed_ms[done],
        "outcome_at_ms": cleared.at_ms[done],
        "delivered": cleared.delivered[done],
        "disputed": cleared.disputed[done],
        "refunded": cleared.refunded[done],
        "kind": cleared.kind[done],
    }
    log = BlockLog(
        tables=tables,
        ticks=n_ticks,
        work_items=int(work.tick.size),
        bids=int(bids.bid_id.size),
        awards=awards,
        successes=int(cleared.paid.sum()),
        fee_minor=fee_minor,
        rounds=cleared.rounds,
        contracts=contracts,
        wash_trades=cleared.wash_rows or {},
    )
    assert log.successes <= log.awards <= log.work_items
    return new_state, log
