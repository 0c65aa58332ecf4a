# Rule: the compiled form of aex/core/scoring.py; every formula, reject rule and tie-break is
# decided there (and in its docs), and this module only fuses them into loops.
#
# Theory of operation. numba compiles these functions to machine code on first call
# (`@njit(cache=True)`: the result is kept in aex/core/__pycache__, or NUMBA_CACHE_DIR, so a
# later process loads it in milliseconds instead of compiling for seconds). One call scores a
# whole batch, auction by auction, with no Python per bid or per auction:
#
#   loop 1, per bid: the value checks of the batch (a branch-free screen; the exact first
#       failing check only for a row that fails it), the four computed components, the reject
#       code before duplicates and the weighted total;
#   loop 2, per accepted bid: duplicates, through an open-addressing table keyed by provider
#       (one probe per bid, the table sized to the auction and stamped, never cleared);
#   loop 3, per bid: the winner (a running lexicographic maximum) or, with ranks, a stable
#       merge sort of the auction's accepted bids under the documented order.
#
# An auction's rows stay in L1/L2 cache between the three loops; the batch is read from memory
# once. Arithmetic is IEEE double without fast-math (no reassociation, no fused multiply-add),
# in the same order as the numpy path, so totals are bit-identical to it. The numpy path in
# aex/core/scoring.py stays the reference; tests/core/test_scoring_reference.py holds the two
# and a plain-Python scalar version equal row by row.
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
from numba import njit

__all__ = ["VALUE_CHECK_COUNT", "rank_batch", "score_batch"]

# The value checks of scoring._value_checks, by position (the kernel returns the position of
# the earliest failing one over the batch, or VALUE_CHECK_COUNT when all hold).
VALUE_CHECK_COUNT = 18
_UNBOUNDED = 2**62  # the upper bound of certified_matches and of the window times

# Codes as in BidRejectReason (1-based precedence).
_NOT_ELIGIBLE = 1
_DUPLICATE = 2
_OUTSIDE_WINDOW = 3
_CURRENCY = 4
_PRICE_NOT_POSITIVE = 5
_PRICE_ABOVE_MAX = 6
_SLA_BEYOND_HARD_LIMIT = 7

# Modes of score_batch: components and codes only; plus totals and winners; plus ranks.
MODE_COMPONENTS = 0
MODE_WINNERS = 1
MODE_RANKS = 2

# The provider hash: a Fibonacci multiplier as a signed int64 (numba wraps int64 products).
_MIX = np.int64(0x9E3779B97F4A7C15 - 2**64)
_INSERTION_RUN = 16
# 0 and 1 typed int64, not Literal[int]: numba compiles a helper called with a literal
# argument twice (once for the literal), and compile time is seconds per specialisation.
_ZERO: Any = np.int64(0)
_ONE: Any = np.int64(1)

_Function = TypeVar("_Function", bound=Callable[..., Any])


def _jit(function: _Function) -> _Function:
    # Compiled on first call, cached on disk; nogil (the simulator scores on threads);
    # IEEE semantics for float division (error_model="numpy": no ZeroDivisionError branch).
    compiled = njit(cache=True, nogil=True, error_model="numpy")(function)
    return cast(_Function, compiled)


@_jit
def _first_failed_check(  # noqa: C901 - one flat branch per check, in order
    price: int,
    budget_min: int,
    budget_max: int,
    trust: float,
    confidence: float,
    sample: float,
    turnaround: int,
    required: int,
    hard_limit: int,
    certified: int,
    tier: int,
    submitted: int,
    opens: int,
    closes: int,
    now_ms: int,
    money_max: int,
    turnaround_max: int,
) -> int:  # pragma: no cover - compiled
    # The exact checks of scoring._value_checks for one row, in the same order.
    if not (-money_max <= price <= money_max):
        return 0
    if not (0 <= budget_min <= money_max):
        return 1
    if not (0 <= budget_max <= money_max):
        return 2
    if budget_max < budget_min:
        return 3
    if not np.isfinite(trust):
        return 4
    if not (0.0 <= trust <= 1.0):
        return 5
    if not np.isfinite(confidence):
        return 6
    if not (0.0 <= confidence <= 1.0):
        return 7
    if not np.isfinite(sample):
        return 8
    if not (0.0 <= sample <= 1.0):
        return 9
    if not (1 <= turnaround <= turnaround_max):
        return 10
    if not (0 <= required <= turnaround_max):
        return 11
    if not (0 <= hard_limit <= turnaround_max):
        return 12
    if not (0 <= certified <= _UNBOUNDED):
        return 13
    if not (0 <= tier <= 3):
        return 14
    if not (0 <= submitted <= now_ms):
        return 15
    if not (0 <= opens <= _UNBOUNDED):
        return 16
    if closes <= opens:
        return 17
    return VALUE_CHECK_COUNT


@_jit
def _precedes(
    a: int,
    b: int,
    base: int,
    totals: Any,
    price: Any,
    submitted: Any,
    bid_id: Any,
) -> bool:  # pragma: no cover - compiled
    # Row a is ordered before row b: higher total, lower price, earlier submission, lower
    # bid_id, then lower row.
    total_a, total_b = totals[a - base], totals[b - base]
    if total_a != total_b:
        return bool(total_a > total_b)
    if price[a] != price[b]:
        return bool(price[a] < price[b])
    if submitted[a] != submitted[b]:
        return bool(submitted[a] < submitted[b])
    if bid_id[a] != bid_id[b]:
        return bool(bid_id[a] < bid_id[b])
    return a < b


@_jit
def _sort_rows(
    rows: Any,
    spare: Any,
    count: int,
    base: int,
    totals: Any,
    price: Any,
    submitted: Any,
    bid_id: Any,
) -> Any:  # pragma: no cover - compiled
    # Stable bottom-up merge sort of rows[:count] under _precedes: insertion sort on runs of
    # _INSERTION_RUN, then merges between rows and spare. Returns the buffer holding the result.
    for run_start in range(0, count, _INSERTION_RUN):
        run_stop = min(run_start + _INSERTION_RUN, count)
        for i in range(run_start + 1, run_stop):
            row = rows[i]
            j = i - 1
            while j >= run_start and _precedes(
                row, rows[j], base, totals, price, submitted, bid_id
            ):
                rows[j + 1] = rows[j]
                j -= 1
            rows[j + 1] = row
    source, target = rows, spare
    width = _INSERTION_RUN
    while width < count:
        for left in range(0, count, 2 * width):
            middle = min(left + width, count)
            right = min(left + 2 * width, count)
            i, j, k = left, middle, left
            while i < middle and j < right:
                # Stable: take from the right run only when it strictly precedes.
                if _precedes(source[j], source[i], base, totals, price, submitted, bid_id):
                    target[k] = source[j]
                    j += 1
                else:
                    target[k] = source[i]
                    i += 1
                k += 1
            while i < middle:
                target[k] = source[i]
                i += 1
                k += 1
            while j < right:
                target[k] = source[j]
                j += 1
                k += 1
        source, target = target, source
        width *= 2
    return source


@_jit
def _winners_or_ranks(
    start: int,
    run_stops: Any,
    runs: int,
    mode: int,
    totals: Any,
    base: int,
    code: Any,
    price: Any,
    submitted: Any,
    bid_id: Any,
    rank_out: Any,
    is_winner: Any,
    rows: Any,
    spare: Any,
) -> None:  # pragma: no cover - compiled
    # Loop 3, per auction of the block: the winner (MODE_WINNERS) or the ranks (MODE_RANKS).
    # totals[row - base] is a row's total, 0 for a rejected row. Winners: the best total by
    # a branch-free running maximum, then the documented tie-breaks among the accepted rows
    # reaching it (usually one). Ranks: a stable sort of the accepted rows.
    first = start
    for run in range(runs):
        last = run_stops[run]
        if mode == MODE_RANKS:
            accepted = 0
            for row in range(first, last):
                rows[accepted] = row
                accepted += code[row] == 0
            if accepted > 0:
                ordered = _sort_rows(rows, spare, accepted, base, totals, price, submitted, bid_id)
                for position in range(accepted):
                    rank_out[ordered[position]] = position + 1
                is_winner[ordered[0]] = True
        else:
            best_total = 0.0
            for row in range(first, last):
                value = totals[row - base]
                best_total = value if value > best_total else best_total
            best = -1
            for row in range(first, last):
                reaches_best = totals[row - base] == best_total and code[row] == 0
                if reaches_best and (
                    best < 0 or _precedes(row, best, base, totals, price, submitted, bid_id)
                ):
                    best = row
            if best >= 0:
                is_winner[best] = True
        first = last


@_jit
def _run_stop(auction_id: Any, start: int, count: int) -> int:  # pragma: no cover - compiled
    # The end of the run of equal auction ids that begins at start.
    auction = auction_id[start]
    stop = start + 1
    while stop < count and auction_id[stop] == auction:
        stop += 1
    return stop


@_jit
def _plainly_valid(
    start: int,
    stop: int,
    price_minor: Any,
    budget_min_minor: Any,
    budget_max_minor: Any,
    trust: Any,
    confidence: Any,
    sample_score: Any,
    turnaround_ms: Any,
    required_turnaround_ms: Any,
    hard_limit_turnaround_ms: Any,
    certified_matches: Any,
    tier: Any,
    submitted_at_ms: Any,
    window_opens_ms: Any,
    window_closes_ms: Any,
    now_ms: int,
    money_max: int,
    turnaround_max: int,
) -> bool:  # pragma: no cover - compiled
    # A branch-free screen, true only if every row passes every value check (NaN fails every
    # comparison); a reduction without stores, so it vectorises. When it says no, the exact
    # checks run (_first_failed_checks).
    valid = True
    for row in range(start, stop):
        price = price_minor[row]
        budget_min, budget_max = budget_min_minor[row], budget_max_minor[row]
        trust_value, confidence_value, sample = trust[row], confidence[row], sample_score[row]
        turnaround = turnaround_ms[row]
        required, hard_limit = required_turnaround_ms[row], hard_limit_turnaround_ms[row]
        certified, tier_value = certified_matches[row], tier[row]
        submitted, opens = submitted_at_ms[row], window_opens_ms[row]
        valid &= (
            (price >= -money_max)
            & (price <= money_max)
            & (budget_min >= 0)
            & (budget_max <= money_max)
            & (budget_min <= budget_max)
            & (trust_value >= 0.0)
            & (trust_value <= 1.0)
            & (confidence_value >= 0.0)
            & (confidence_value <= 1.0)
            & (sample >= 0.0)
            & (sample <= 1.0)
            & (turnaround >= 1)
            & (turnaround <= turnaround_max)
            & (required >= 0)
            & (required <= turnaround_max)
            & (hard_limit >= 0)
            & (hard_limit <= turnaround_max)
            & (certified >= 0)
            & (certified <= _UNBOUNDED)
            & (tier_value >= 0)
            & (tier_value <= 3)
            & (submitted >= 0)
            & (submitted <= now_ms)
            & (opens >= 0)
            & (opens <= _UNBOUNDED)
            & (window_closes_ms[row] > opens)
        )
    return valid


# Loop 1 is a handful of small loops over a block of whole auctions (in L2 after the first),
# each with one output column: few enough arrays for LLVM's loop vectoriser to prove them
# independent at run time, which one fused loop over twenty-six columns is not.


@_jit
def _sample_scores(
    start: int, stop: int, has_sample: Any, sample_quality: Any, neutral: float, out: Any
) -> None:  # pragma: no cover - compiled
    # The quality of a provided sample, else the neutral value; -0.0 + 0.0 is 0.0, as in the
    # numpy path.
    for row in range(start, stop):
        out[row] = (sample_quality[row] if has_sample[row] else neutral) + 0.0


@_jit
def _price_scores(
    start: int, stop: int, price_minor: Any, budget_min: Any, budget_max: Any, out: Any
) -> None:  # pragma: no cover - compiled
    # clip(headroom / span, 0, 1); a one-price budget (span 0): 1 at or below it, else 0.
    for row in range(start, stop):
        headroom = budget_max[row] - price_minor[row]
        span = budget_max[row] - budget_min[row]
        clipped = min(max(headroom / span, 0.0), 1.0)
        out[row] = clipped if span != 0 else (1.0 if headroom >= 0 else 0.0)


@_jit
def _sla_scores(
    start: int, stop: int, turnaround_ms: Any, required_turnaround_ms: Any, out: Any
) -> None:  # pragma: no cover - compiled
    # 1 without a requirement, else min(1, required / promised).
    for row in range(start, stop):
        required = required_turnaround_ms[row]
        quotient = min(required / turnaround_ms[row], 1.0)
        out[row] = 1.0 if required == 0 else quotient


@_jit
def _certification_scores(
    start: int, stop: int, certified_matches: Any, tier: Any, by_index: Any, out: Any
) -> None:  # pragma: no cover - compiled
    # The table entry 4 × certified + tier, as selects rather than a gather (a gather keeps
    # LLVM from vectorising the loop); a tier outside 0..3 (rejected later) reads as BRONZE.
    uncertified, bronze, silver, gold, platinum = (
        by_index[0],
        by_index[4],
        by_index[5],
        by_index[6],
        by_index[7],
    )
    for row in range(start, stop):
        tier_value = tier[row]
        value = silver if tier_value == 1 else bronze
        value = gold if tier_value == 2 else value
        value = platinum if tier_value == 3 else value
        out[row] = value if certified_matches[row] > 0 else uncertified


@_jit
def _reject_codes(
    start: int,
    stop: int,
    price_minor: Any,
    budget_max_minor: Any,
    turnaround_ms: Any,
    hard_limit_turnaround_ms: Any,
    currency_matches: Any,
    submitted_at_ms: Any,
    window_opens_ms: Any,
    window_closes_ms: Any,
    eligible: Any,
    code: Any,
) -> None:  # pragma: no cover - compiled
    # The first failing check in precedence order, chosen from the last check to the first
    # (DUPLICATE_BID is decided later, in _mark_duplicates). One store per row, so it
    # vectorises.
    for row in range(start, stop):
        price, hard_limit = price_minor[row], hard_limit_turnaround_ms[row]
        submitted = submitted_at_ms[row]
        outside = (submitted < window_opens_ms[row]) | (submitted >= window_closes_ms[row])
        value = (
            _SLA_BEYOND_HARD_LIMIT if (hard_limit > 0) & (turnaround_ms[row] > hard_limit) else 0
        )
        value = _PRICE_ABOVE_MAX if price > budget_max_minor[row] else value
        value = _PRICE_NOT_POSITIVE if price <= 0 else value
        value = _CURRENCY if not currency_matches[row] else value
        value = _OUTSIDE_WINDOW if outside else value
        code[row] = _NOT_ELIGIBLE if not eligible[row] else value


@_jit
def _weighted_totals(
    start: int,
    stop: int,
    price_score: Any,
    trust: Any,
    confidence: Any,
    sample_score: Any,
    sla_score: Any,
    certification_score: Any,
    code: Any,
    weights: Any,
    totals: Any,
    base: int,
) -> bool:  # pragma: no cover - compiled
    # min(1, Σ weight × component), summed left to right as in the numpy path; 0 for a
    # rejected bid. Returns False if a total is negative or NaN (a component out of range).
    w_price, w_trust, w_confidence = weights[0], weights[1], weights[2]
    w_sample, w_sla, w_certification = weights[3], weights[4], weights[5]
    in_range = True
    for row in range(start, stop):
        weighted = price_score[row] * w_price
        weighted += trust[row] * w_trust
        weighted += confidence[row] * w_confidence
        weighted += sample_score[row] * w_sample
        weighted += sla_score[row] * w_sla
        weighted += certification_score[row] * w_certification
        weighted = min(weighted, 1.0)
        in_range &= weighted >= 0.0
        totals[row - base] = weighted if code[row] == 0 else 0.0
    return in_range


@_jit
def _first_failed_checks(
    start: int,
    stop: int,
    failed: int,
    price_minor: Any,
    budget_min_minor: Any,
    budget_max_minor: Any,
    trust: Any,
    confidence: Any,
    sample_score: Any,
    turnaround_ms: Any,
    required_turnaround_ms: Any,
    hard_limit_turnaround_ms: Any,
    certified_matches: Any,
    tier: Any,
    submitted_at_ms: Any,
    window_opens_ms: Any,
    window_closes_ms: Any,
    now_ms: int,
    money_max: int,
    turnaround_max: int,
) -> int:  # pragma: no cover - compiled
    # The earliest failing value check over rows start..stop-1 and the earlier `failed`.
    for row in range(start, stop):
        check = _first_failed_check(
            price_minor[row],
            budget_min_minor[row],
            budget_max_minor[row],
            trust[row],
            confidence[row],
            sample_score[row],
            turnaround_ms[row],
            required_turnaround_ms[row],
            hard_limit_turnaround_ms[row],
            certified_matches[row],
            tier[row],
            submitted_at_ms[row],
            window_opens_ms[row],
            window_closes_ms[row],
            now_ms,
            money_max,
            turnaround_max,
        )
        failed = min(failed, check)
    return failed


@_jit
def _mark_duplicates(
    start: int,
    run_stops: Any,
    runs: int,
    provider_id: Any,
    submitted_at_ms: Any,
    bid_id: Any,
    reject_reason: Any,
    totals: Any,
    base: int,
    table: Any,
    candidates: Any,
) -> None:  # pragma: no cover - compiled
    # Loop 2, per auction of the block: among one provider's bids passing every other check,
    # the first by (submitted_at_ms, bid_id, row) counts; every other one is a DUPLICATE_BID
    # (total 0). The auction's candidates are first gathered without a branch, then go
    # through an open-addressing table keyed by provider (table[0] the provider, table[1] the
    # kept row, table[2] a stamp: a slot is live only when stamped with this auction's number,
    # so the table is never cleared). table has room for 2 × the largest auction.
    first = start
    for run in range(runs):
        last = run_stops[run]
        found = 0
        for row in range(first, last):
            candidates[found] = row
            found += reject_reason[row] == 0
        if found > 1:
            size = 16
            while size < 2 * found:
                size *= 2
            mask = size - 1
            stamp = first + 1  # unique per auction in this call
            for position in range(found):
                row = candidates[position]
                provider = provider_id[row]
                slot = ((provider * _MIX) >> 40) & mask
                while table[2, slot] == stamp and table[0, slot] != provider:
                    slot = (slot + 1) & mask
                if table[2, slot] != stamp:
                    table[0, slot], table[1, slot], table[2, slot] = provider, row, stamp
                    continue
                kept = table[1, slot]
                earlier = submitted_at_ms[row] < submitted_at_ms[kept] or (
                    submitted_at_ms[row] == submitted_at_ms[kept] and bid_id[row] < bid_id[kept]
                )
                loser = kept if earlier else row
                if earlier:
                    table[1, slot] = row
                reject_reason[loser] = _DUPLICATE
                totals[loser - base] = 0.0
        first = last


@_jit
def score_batch(
    auction_id: Any,
    bid_id: Any,
    provider_id: Any,
    price_minor: Any,
    currency_matches: Any,
    budget_min_minor: Any,
    budget_max_minor: Any,
    trust: Any,
    confidence: Any,
    has_sample: Any,
    sample_quality: Any,
    turnaround_ms: Any,
    required_turnaround_ms: Any,
    hard_limit_turnaround_ms: Any,
    certified_matches: Any,
    tier: Any,
    submitted_at_ms: Any,
    window_opens_ms: Any,
    window_closes_ms: Any,
    eligible: Any,
    weights: Any,
    certification_by_index: Any,
    now_ms: int,
    neutral_sample_score: float,
    money_max: int,
    turnaround_max: int,
    bids_per_work_max: int,
    block_rows: int,
    mode: int,
    price_score: Any,
    sample_score: Any,
    sla_score: Any,
    certification_score: Any,
    reject_reason: Any,
    total: Any,
    rank: Any,
    is_winner: Any,
) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Scores a batch (shapes checked by BidBatch) into the given outputs.

    Blocks of whole auctions of about block_rows rows: the loops over columns run per block,
    duplicates and winners per auction. total has one row per bid, except in MODE_COMPONENTS
    where it may be empty (the totals then go to a block-sized buffer). Returns (auction ids
    decrease somewhere, an auction exceeds bids_per_work_max, the position of the earliest
    failing value check or VALUE_CHECK_COUNT); when any says so the outputs are meaningless
    and the caller rejects.
    """
    count = auction_id.shape[0]
    unsorted = 0
    too_large = 0
    failed = VALUE_CHECK_COUNT
    table = np.zeros((3, 2048), dtype=np.int64)  # room for auctions of up to 1024 bids
    buffer_rows = block_rows + bids_per_work_max + 1
    local_total = np.empty(buffer_rows if mode == MODE_COMPONENTS else 0, dtype=np.float64)
    run_stops = np.empty(buffer_rows, dtype=np.int64)
    rows = np.empty(bids_per_work_max + 1, dtype=np.int64)
    spare = np.empty(bids_per_work_max + 1, dtype=np.int64)
    start = _ZERO
    while start < count:
        # The block: whole auctions from start, until about block_rows rows.
        stop, runs, largest = start, 0, 0
        while stop < count and (stop - start < block_rows or runs == 0):
            run_stop = _run_stop(auction_id, stop, count)
            if run_stop < count and auction_id[run_stop] < auction_id[stop]:
                unsorted = 1
            largest = max(largest, run_stop - stop)
            if runs == run_stops.shape[0]:  # only when block_rows is tiny: grow
                grown = np.empty(2 * runs, dtype=np.int64)
                grown[:runs] = run_stops
                run_stops = grown
            run_stops[runs] = run_stop
            runs += 1
            stop = run_stop
        if largest > bids_per_work_max:
            too_large = 1
        if largest > rows.shape[0]:  # only in a batch that is rejected: keep memory-safe
            rows = np.empty(largest, dtype=np.int64)
            spare = np.empty(largest, dtype=np.int64)
        if mode == MODE_COMPONENTS:
            if stop - start > local_total.shape[0]:
                local_total = np.empty(stop - start, dtype=np.float64)
            totals, base = local_total, start
        else:
            totals, base = total, _ZERO
        _sample_scores(start, stop, has_sample, sample_quality, neutral_sample_score, sample_score)
        if not _plainly_valid(
            start,
            stop,
            price_minor,
            budget_min_minor,
            budget_max_minor,
            trust,
            confidence,
            sample_score,
            turnaround_ms,
            required_turnaround_ms,
            hard_limit_turnaround_ms,
            certified_matches,
            tier,
            submitted_at_ms,
            window_opens_ms,
            window_closes_ms,
            now_ms,
            money_max,
            turnaround_max,
        ):
            failed = _first_failed_checks(
                start,
                stop,
                failed,
                price_minor,
                budget_min_minor,
                budget_max_minor,
                trust,
                confidence,
                sample_score,
                turnaround_ms,
                required_turnaround_ms,
                hard_limit_turnaround_ms,
                certified_matches,
                tier,
                submitted_at_ms,
                window_opens_ms,
                window_closes_ms,
                now_ms,
                money_max,
                turnaround_max,
            )
        _price_scores(start, stop, price_minor, budget_min_minor, budget_max_minor, price_score)
        _sla_scores(start, stop, turnaround_ms, required_turnaround_ms, sla_score)
        _certification_scores(
            start, stop, certified_matches, tier, certification_by_index, certification_score
        )
        _reject_codes(
            start,
            stop,
            price_minor,
            budget_max_minor,
            turnaround_ms,
            hard_limit_turnaround_ms,
            currency_matches,
            submitted_at_ms,
            window_opens_ms,
            window_closes_ms,
            eligible,
            reject_reason,
        )
        _weighted_totals(
            start,
            stop,
            price_score,
            trust,
            confidence,
            sample_score,
            sla_score,
            certification_score,
            reject_reason,
            weights,
            totals,
            base,
        )
        # Per auction: duplicates, then the winner or the ranks.
        while table.shape[1] < 2 * largest:
            table = np.zeros((3, 2 * table.shape[1]), dtype=np.int64)
        _mark_duplicates(
            start,
            run_stops,
            runs,
            provider_id,
            submitted_at_ms,
            bid_id,
            reject_reason,
            totals,
            base,
            table,
            rows,
        )
        if mode != MODE_COMPONENTS:
            _winners_or_ranks(
                start,
                run_stops,
                runs,
                mode,
                totals,
                base,
                reject_reason,
                price_minor,
                submitted_at_ms,
                bid_id,
                rank,
                is_winner,
                rows,
                spare,
            )
        start = stop
    return unsorted, too_large, failed


@_jit
def rank_batch(
    auction_id: Any,
    price_score: Any,
    trust_score: Any,
    confidence_score: Any,
    sample_score: Any,
    sla_score: Any,
    certification_score: Any,
    reject_reason: Any,
    price_minor: Any,
    submitted_at_ms: Any,
    bid_id: Any,
    weights: Any,
    bids_per_work_max: int,
    mode: int,
    total: Any,
    rank: Any,
    is_winner: Any,
) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Totals, winners and (MODE_RANKS) ranks from given components.

    Returns (auction ids decrease somewhere, an auction exceeds bids_per_work_max, a total
    was negative or NaN, i.e. a component outside [0, 1]).
    """
    count = auction_id.shape[0]
    unsorted = 0
    too_large = 0
    out_of_range = 0
    rows = np.empty(bids_per_work_max + 1, dtype=np.int64)
    spare = np.empty(bids_per_work_max + 1, dtype=np.int64)
    run_stop = np.empty(1, dtype=np.int64)
    start = _ZERO
    while start < count:
        stop = _run_stop(auction_id, start, count)
        if stop < count and auction_id[stop] < auction_id[start]:
            unsorted = 1
        size = stop - start
        if size > bids_per_work_max:
            too_large = 1
        if size > rows.shape[0]:
            rows = np.empty(size, dtype=np.int64)
            spare = np.empty(size, dtype=np.int64)
        in_range = _weighted_totals(
            start,
            stop,
            price_score,
            trust_score,
            confidence_score,
            sample_score,
            sla_score,
            certification_score,
            reject_reason,
            weights,
            total,
            _ZERO,
        )
        if not in_range:
            out_of_range = 1
        run_stop[0] = stop
        _winners_or_ranks(
            start,
            run_stop,
            _ONE,
            mode,
            total,
            _ZERO,
            reject_reason,
            price_minor,
            submitted_at_ms,
            bid_id,
            rank,
            is_winner,
            rows,
            spare,
        )
        start = stop
    return unsorted, too_large, out_of_range
