"""The market engine: one `step(streams, state, params, population)` per block of ticks.

Theory of operation. Parameters (`ScenarioParams`, frozen), the drawn population
(`Population`, frozen, fixed for a run) and the evolving `MarketState` are separate types;
`step` returns a new state and the block's market-log rows. All formulas come from aex/core
through aex/sim/_core.py: price score (`price_score_column`), ranking and the winner
(`rank_auctions`), reputation (`beta_posterior_mean`), tiers (`tiers_for`) and the fee split
(`split_fee_columns`).

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
_GAP_REFILLS_MAX = 64  # top-up rounds of the geometric-gap draw (each covers ~all of a slice)


@dataclass(frozen=True, slots=True)
class Streams:
    """One Generator per component, spawned from the replication's SeedSequence."""

    population: np.random.Generator
    work: np.random.Generator
    bids: np.random.Generator
    outcomes: np.random.Generator

    @classmethod
    def spawn(cls, seed: int, replication: int) -> Streams:
        replication_seq = np.random.SeedSequence(seed).spawn(replication + 1)[replication]
        children = replication_seq.spawn(4)
        return cls(*(np.random.Generator(np.random.PCG64(c)) for c in children))


@dataclass(frozen=True, slots=True)
class Population:
    """Provider slots drawn once per run, sorted by category (bids draw over category slices)."""

    strategy_code: npt.NDArray[np.int8]
    quality: F64
    cost_minor: I64
    markup_min: F64
    markup_max: F64
    confidence: F64
    sample_score: F64
    sla_score: F64
    certified: B1
    bid_probability: F64
    category: npt.NDArray[np.int32]
    join_tick: I64
    params: Mapping[str, F64]
    category_start: I64
    category_size: I64

    @property
    def size(self) -> int:
        return int(self.quality.size)

    @property
    def certification_score(self) -> F64:
        return self.certified.astype(np.float64)


@dataclass(frozen=True, slots=True)
class MarketState:
    """What evolves: the tick, each slot's record under its current identity, strategy state,
    and the id counters."""

    tick: int
    successes: F64
    failures: F64
    identity_id: I64
    markup_shift: F64
    next_identity_id: int
    next_work_id: int
    next_bid_id: int


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


def _minor(major: F64 | float) -> I64:
    return np.asarray(np.rint(np.asarray(major) * MINOR_PER_MAJOR), dtype=np.int64)


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
        put("sample_score", np.clip(quality + rng.normal(0.0, group.sample_noise_sd, n), 0.0, 1.0))
        put("sla_score", rng.uniform(0.0, 1.0, n))
        put("certified", rng.random(n) < group.certified_probability)
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
        successes=np.zeros(n_total),
        failures=np.zeros(n_total),
        identity_id=np.arange(1, n_total + 1, dtype=np.int64),
        markup_shift=np.zeros(n_total),
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
    price_score: F64
    confidence_score: F64
    sample_score: F64
    sla_score: F64
    certification_score: F64
    success_probability: F64
    cost_factor: F64

    def take(self, keep: B1 | I64) -> _Bids:
        return _Bids(*(getattr(self, f.name)[keep] for f in dataclasses.fields(_Bids)))


def _reputation(state_s: F64, state_f: F64, params: ScenarioParams) -> F64:
    return np.asarray(
        _core.beta_posterior_mean(
            state_s,
            state_f,
            prior_alpha=params.reputation.prior_alpha,
            prior_beta=params.reputation.prior_beta,
        ),
        dtype=np.float64,
    )


@dataclass(frozen=True, slots=True)
class _Work:
    tick: I64  # local tick index
    consumer: I64
    category: I64
    budget_min_minor: I64
    budget_max_minor: I64
    large: B1
    success_uniform: F64


def _draw_work(streams: Streams, params: ScenarioParams, counts: I64) -> _Work:
    m = params.market
    rng = streams.work
    n = int(counts.sum())
    budget = rng.uniform(m.budget_min_major, m.budget_max_major, n)
    large = rng.random(n) < m.large_work_probability
    budget_max = np.maximum(_minor(np.where(large, budget * m.large_work_multiplier, budget)), 1)
    return _Work(
        tick=np.repeat(np.arange(counts.size, dtype=np.int64), counts),
        consumer=rng.integers(1, m.consumers + 1, n),
        category=rng.integers(0, m.categories, n),
        budget_min_minor=np.floor(budget_max * m.budget_floor_fraction).astype(np.int64),
        budget_max_minor=budget_max,
        large=large,
        success_uniform=streams.outcomes.random(n),
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
    needs_thinning = bool((pop.bid_probability < p_max).any() or (pop.join_tick > 0).any())
    thin = rng.random(n) if needs_thinning else None  # static: population only
    return Draws(tick, n_ticks, work, work_of_bid, provider, markup_uniform, submitted_offset, thin)


def _draw_bids(
    draws: Draws,
    params: ScenarioParams,
    population: Population,
    state: MarketState,
) -> _Bids:
    pop = population
    work = draws.work
    work_of_bid, provider = draws.work_of_bid, draws.provider
    markup_uniform, submitted_offset = draws.markup_uniform, draws.submitted_offset_ms
    p_max = float(pop.bid_probability.max())
    keep: B1 | None = None  # None: every drawn bid so far
    if draws.thin is not None:
        keep = draws.thin * p_max < pop.bid_probability[provider]
        keep &= pop.join_tick[provider] <= state.tick + work.tick[work_of_bid]
    markup_low = pop.markup_min + state.markup_shift  # per provider, then per bid
    markup_span = pop.markup_max - pop.markup_min
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
        score = _reputation(state.successes, state.failures, params)
        contracts = (state.successes + state.failures).astype(np.int64)
        tier = np.asarray(_core.tiers_for(score, contracts), dtype=np.int8)
        farming_done = strategies.farming_done(pop.strategy_code, tier, pop.params)
        code = pop.strategy_code[provider]
        done = farming_done[provider]
        allowed = strategies.bids_allowed(code, done, work.large[work_of_bid])
        keep = allowed if keep is None else keep & allowed
        bid_params = {k: v[provider] for k, v in pop.params.items()}
        markup += strategies.markup_adjustment(code, done, bid_params)
    # price = max(1, rint(cost × (1 + markup))) in float64 (integers exactly), int64 once kept
    markup += 1.0
    price_f = pop.cost_minor.astype(np.float64)[provider]
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
        price_score=np.asarray(
            _core.price_score_column(
                price_k, work.budget_min_minor[work_k], work.budget_max_minor[work_k]
            ),
            dtype=np.float64,
        ),
        confidence_score=pop.confidence[provider_k],
        sample_score=pop.sample_score[provider_k],
        sla_score=pop.sla_score[provider_k],
        certification_score=pop.certification_score[provider_k],
        success_probability=success_probability,
        cost_factor=cost_factor,
    )


def _constant(values: F64) -> bool:
    return bool(values.size == 0 or (values == values[0]).all())


def _has_bidding_rules(pop: Population) -> bool:
    # Honest, overconfident and learning providers bid by the generic rule; low-ballers and
    # farmers change which work they bid on, their price and their delivery.
    rules = (strategies.CODE["low_baller"], strategies.CODE["reputation_farmer"])
    return bool(np.isin(pop.strategy_code, rules).any())


def _components(bids: _Bids, trust: F64, rows: slice) -> _core.Components:
    # views of a contiguous run of rows (no copies)
    return _core.Components(
        price_score=bids.price_score[rows],
        trust_score=trust[rows],
        confidence_score=bids.confidence_score[rows],
        sample_score=bids.sample_score[rows],
        sla_score=bids.sla_score[rows],
        certification_score=bids.certification_score[rows],
        reject_reason=np.zeros(trust[rows].size, np.uint8),
    )


@dataclass(frozen=True, slots=True)
class _Cleared:
    winner_of_work: I64  # bid index per work item, -1 when no bid
    success: B1  # per work item (False when not cleared)
    trust: F64  # per bid, as scored
    total: F64
    rank: npt.NDArray[np.int32]
    is_winner: B1
    jobs: F64  # (ticks, providers) awards per tick
    wins: F64  # (ticks, providers) successes per tick
    rounds: int  # ranking passes over the block's bids (1: tick by tick)


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
    # work ordered by tick) are ranked by the core with the reputations as of the tick's start,
    # then the tick's awards and outcomes update the records. One ranking pass, exactly the
    # sequential market; the block only batches the draws and the pricing.
    n_providers = pop.size
    n_work = work.tick.size
    n_bids = bids.bid_id.size
    with_ranks = params.log.bids == "all"
    tick_bounds = np.searchsorted(bids.tick, np.arange(n_ticks + 1, dtype=np.int64))
    trust = np.empty(n_bids)
    total = np.zeros(n_bids)
    ranks = np.zeros(n_bids, np.int32)
    is_winner = np.zeros(n_bids, bool)
    winner_of_work = np.full(n_work, -1, np.int64)
    success = np.zeros(n_work, bool)
    jobs = np.zeros((n_ticks, n_providers))
    wins = np.zeros((n_ticks, n_providers))
    successes, failures = state.successes.copy(), state.failures.copy()
    for t in range(n_ticks):
        start, stop = int(tick_bounds[t]), int(tick_bounds[t + 1])
        if start == stop:
            continue
        rows = slice(start, stop)
        reputation = _reputation(successes, failures, params)
        trust[rows] = reputation[bids.provider[rows]]
        scored = _core.rank_auctions(
            bids.work[rows],
            _components(bids, trust, rows),
            weights,
            price_minor=bids.price_minor[rows],
            submitted_at_ms=bids.submitted_at_ms[rows],
            bid_id=bids.bid_id[rows],
            with_ranks=with_ranks,
        )
        total[rows], is_winner[rows] = scored.total, scored.is_winner
        if with_ranks:
            ranks[rows] = scored.rank
        won = start + np.flatnonzero(scored.is_winner)
        work_won = bids.work[won]
        winner_of_work[work_won] = won
        ok = work.success_uniform[work_won] < bids.success_probability[won]
        success[work_won] = ok
        slot = bids.provider[won]
        jobs[t] = np.bincount(slot, minlength=n_providers)
        wins[t] = np.bincount(slot, weights=ok, minlength=n_providers)
        successes += wins[t]
        failures += jobs[t] - wins[t]
    return _Cleared(winner_of_work, success, trust, total, ranks, is_winner, jobs, wins, 1)


def _log_tables(
    params: ScenarioParams,
    pop: Population,
    state: MarketState,
    work: _Work,
    bids: _Bids,
    cl: _Cleared,
) -> tuple[dict[str, Columns], int]:
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
    if params.log.bids != "none":
        shown = slice(None) if params.log.bids == "all" else np.flatnonzero(cl.is_winner)
        comps = _components(bids, cl.trust, slice(None))
        tables["bids"] = {
            "work_id": work_id[bids.work[shown]],
            "bid_id": bids.bid_id[shown],
            "provider_id": state.identity_id[bids.provider[shown]],
            "tick": (tick0 + bids.tick[shown]).astype(np.int32),
            "price_minor": bids.price_minor[shown],
            "submitted_at_ms": bids.submitted_at_ms[shown],
            "price_score": comps.price_score[shown],
            "trust_score": comps.trust_score[shown],
            "confidence_score": comps.confidence_score[shown],
            "sample_score": comps.sample_score[shown],
            "sla_score": comps.sla_score[shown],
            "certification_score": comps.certification_score[shown],
            "total": cl.total[shown],
            "rank": cl.rank[shown],
            "is_winner": cl.is_winner[shown],
            "reject_reason": comps.reject_reason[shown],
        }
    cleared = np.flatnonzero(cl.winner_of_work >= 0)
    winning = cl.winner_of_work[cleared]
    winner_id = state.identity_id[bids.provider[winning]]
    price = bids.price_minor[winning]
    tables["awards"] = {
        "work_id": work_id[cleared],
        "bid_id": bids.bid_id[winning],
        "provider_id": winner_id,
        "tick": abs_tick[cleared],
        "price_minor": price,
        "total": cl.total[winning],
    }
    cost = np.rint(pop.cost_minor[bids.provider[winning]] * bids.cost_factor[winning])
    tables["outcomes"] = {
        "work_id": work_id[cleared],
        "provider_id": winner_id,
        "tick": abs_tick[cleared],
        "success": cl.success[cleared],
        "cost_minor": cost.astype(np.int64),
    }
    ok = cl.success[cleared]
    # spec: the 15% fee on successful work; the core splits price into fee and payout
    fee, payout = _core.split_fee_columns(price[ok], fee_bps=params.scoring.fee_bps)
    tables["settlements"] = {
        "work_id": work_id[cleared][ok],
        "provider_id": winner_id[ok],
        "tick": abs_tick[cleared][ok],
        "price_minor": price[ok],
        "fee_minor": fee,
        "payout_minor": payout,
    }
    if params.log.reputation == "changes":
        tables["reputation"] = _reputation_changes(params, state, cl)
    return tables, int(fee.sum())


def _reputation_changes(params: ScenarioParams, state: MarketState, cl: _Cleared) -> Columns:
    successes = state.successes + np.cumsum(cl.wins, axis=0)
    failures = state.failures + np.cumsum(cl.jobs - cl.wins, axis=0)
    tick, slot = np.nonzero(cl.jobs)
    s, f = successes[tick, slot], failures[tick, slot]
    score = _reputation(s, f, params)
    contracts = (s + f).astype(np.int64)
    return {
        "tick": (state.tick + tick).astype(np.int32),
        "provider_id": state.identity_id[slot],
        "score": score,
        "contracts": contracts,
        "successes": s.astype(np.int64),
        "tier": np.asarray(_core.tiers_for(score, contracts), dtype=np.int8),
    }


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
    params: ScenarioParams, pop: Population, state: MarketState, bids: _Bids, cl: _Cleared
) -> tuple[MarketState, Columns | None]:
    # Strategies react at the block boundary: learners move their markup; whitewashers whose
    # record went bad re-register under a fresh identity with an empty record.
    successes = state.successes + cl.wins.sum(axis=0)
    failures = state.failures + (cl.jobs - cl.wins).sum(axis=0)
    n = pop.size
    bid_count = np.bincount(bids.provider, minlength=n).astype(np.float64)
    win_count = cl.jobs.sum(axis=0)
    shift = strategies.learned_markup_shift(
        pop.strategy_code, state.markup_shift, bid_count, win_count, pop.params
    )
    score = _reputation(successes, failures, params)
    reset = np.flatnonzero(
        strategies.whitewash(pop.strategy_code, score, successes + failures, pop.params)
    )
    identity = state.identity_id.copy()
    new_ids = state.next_identity_id + np.arange(reset.size, dtype=np.int64)
    identity[reset] = new_ids
    successes[reset] = 0.0
    failures[reset] = 0.0
    n_ticks = cl.jobs.shape[0]
    new_state = MarketState(
        tick=state.tick + n_ticks,
        successes=successes,
        failures=failures,
        identity_id=identity,
        markup_shift=shift,
        next_identity_id=state.next_identity_id + reset.size,
        next_work_id=state.next_work_id + cl.success.size,
        next_bid_id=state.next_bid_id + bids.bid_id.size,
    )
    rows = provider_rows(pop, new_ids, reset, state.tick + n_ticks) if reset.size else None
    return new_state, rows


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
    ahead by `draw_block`), clears every auction with the core's ranking under exact per-tick
    reputation, settles successes through the core's fee split, and lets strategies adapt.
    Returns the new state and the block's market-log rows.
    """
    if draws is None:
        draws = draw_block(streams, params, population, state.tick)
    assert draws.tick == state.tick, "draws belong to another block"
    n_ticks = draws.ticks
    work = draws.work
    bids = _draw_bids(draws, params, population, state)
    cleared = _clear_block(params, weights, population, state, work, bids, n_ticks)
    tables, fee_minor = _log_tables(params, population, state, work, bids, cleared)
    new_state, new_providers = _adapt(params, population, state, bids, cleared)
    if new_providers is not None:
        tables["providers"] = new_providers
    awards = int((cleared.winner_of_work >= 0).sum())
    log = BlockLog(
        tables=tables,
        ticks=n_ticks,
        work_items=int(work.tick.size),
        bids=int(bids.bid_id.size),
        awards=awards,
        successes=int(cleared.success.sum()),
        fee_minor=fee_minor,
        rounds=cleared.rounds,
    )
    assert log.successes <= log.awards <= log.work_items
    return new_state, log
