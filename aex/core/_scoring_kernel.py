# Rule: the compiled form of aex/core/scoring.py; every formula, reject rule and tie-break is
# decided there (and in its docs), and this module only fuses them into loops.
#
# Theory of operation. numba compiles these functions to machine code on first call
# (`@njit(cache=True)`: the result is kept in aex/core/__pycache__, or NUMBA_CACHE_DIR, so a
# later process loads it in milliseconds instead of compiling for seconds). One call scores a
# whole batch in blocks of whole auctions, with no Python per bid or per auction:
#
#   per block, a few small loops over its columns, each vectorised: the value screen (one
#       max, or min and max, reduction per column; the exact first failing check only for a
#       block that fails it), the sample, price, SLA and certification scores, the reject code
#       before duplicates and the weighted total;
#   per auction of the block, one pass over its candidates (the bids passing every other
#       check): duplicates, through an open-addressing table of kept rows keyed by provider
#       (one probe per bid, never cleared), and the winner as a running lexicographic maximum
#       (or, with ranks, a stable merge sort of the accepted bids under the documented order).
#
# Every block loop indexes a view of the block from 0: numba turns a[row] with a signed row
# of unknown sign into a[row + len if row < 0 else row], which LLVM vectorises only as a
# gather (several times slower than a contiguous load); from 0 it proves row >= 0 and drops
# the fix-up. A block's rows stay in L2 between the loops; the batch is read from memory
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
_ONE_BITS = int(np.float64(1.0).view(np.uint64))  # for x in [0, 1]: its bits are at most these

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
def _highest(column: Any, start: int, stop: int) -> Any:  # pragma: no cover - compiled
    # The largest value of column[start:stop] (a max reduction: one stream, it vectorises).
    block = column[start:stop]
    high = block[0]
    for row in range(1, stop - start):
        value = block[row]
        high = value if value > high else high
    return high


@_jit
def _lowest_and_highest(column: Any, start: int, stop: int) -> Any:  # pragma: no cover - compiled
    # The smallest and the largest value of column[start:stop].
    block = column[start:stop]
    low = high = block[0]
    for row in range(1, stop - start):
        value = block[row]
        low = value if value < low else low
        high = value if value > high else high
    return low, high


@_jit
def _lowest_difference(
    later: Any, earlier: Any, start: int, stop: int
) -> Any:  # pragma: no cover - compiled
    # The smallest later[row] - earlier[row] (both columns are range-checked first: no wrap).
    block_later, block_earlier = later[start:stop], earlier[start:stop]
    low = block_later[0] - block_earlier[0]
    for row in range(1, stop - start):
        difference = block_later[row] - block_earlier[row]
        low = difference if difference < low else low
    return low


@_jit
def _plainly_valid(  # noqa: C901 - one reduction per column rule, in order
    start: int,
    stop: int,
    price_minor: Any,
    budget_min_bits: Any,
    budget_max_bits: Any,
    budget_min_minor: Any,
    budget_max_minor: Any,
    trust_bits: Any,
    confidence_bits: Any,
    sample_bits: Any,
    turnaround_ms: Any,
    required_bits: Any,
    hard_limit_bits: Any,
    certified_bits: Any,
    tier_bits: Any,
    submitted_bits: Any,
    opens_bits: Any,
    closes_bits: Any,
    window_opens_ms: Any,
    window_closes_ms: Any,
    now_ms: int,
    money_max: int,
    turnaround_max: int,
) -> bool:  # pragma: no cover - compiled
    # A screen, true only if every row of the block passes every value check: one reduction
    # per column, each a single stream read once (the first read of the block from memory).
    # A column `_bits` is the same column read as unsigned: 0 <= x <= high is x <= high, a
    # negative integer, a negative float (-0.0 too) or a NaN being huge. Stricter than the
    # checks (-0.0, a window closing after 2^62): when it says no, the exact checks run
    # (_first_failed_checks) and decide.
    low, high = _lowest_and_highest(price_minor, start, stop)
    if low < -money_max or high > money_max:
        return False
    money_bits = np.uint64(money_max)
    if _highest(budget_min_bits, start, stop) > money_bits:
        return False
    if _highest(budget_max_bits, start, stop) > money_bits:
        return False
    if _lowest_difference(budget_max_minor, budget_min_minor, start, stop) < 0:
        return False
    one_bits = np.uint64(_ONE_BITS)
    if _highest(trust_bits, start, stop) > one_bits:
        return False
    if _highest(confidence_bits, start, stop) > one_bits:
        return False
    if _highest(sample_bits, start, stop) > one_bits:
        return False
    low, high = _lowest_and_highest(turnaround_ms, start, stop)
    if low < 1 or high > turnaround_max:
        return False
    turnaround_bits = np.uint64(turnaround_max)
    if _highest(required_bits, start, stop) > turnaround_bits:
        return False
    if _highest(hard_limit_bits, start, stop) > turnaround_bits:
        return False
    unbounded_bits = np.uint64(_UNBOUNDED)
    if _highest(certified_bits, start, stop) > unbounded_bits:
        return False
    if _highest(tier_bits, start, stop) > np.uint8(3):
        return False
    if _highest(submitted_bits, start, stop) > np.uint64(now_ms):
        return False
    if _highest(opens_bits, start, stop) > unbounded_bits:
        return False
    if _highest(closes_bits, start, stop) > unbounded_bits:
        return False
    return bool(_lowest_difference(window_closes_ms, window_opens_ms, start, stop) >= 1)


# The block loops: a handful of small loops over a block of whole auctions (in L2 after the
# first), each with one output column: few enough arrays for LLVM's loop vectoriser to prove
# them independent at run time, which one fused loop over twenty-six columns is not (it stays
# scalar, and measured 4x slower than these together).


@_jit
def _sample_scores(
    start: int, stop: int, has_sample: Any, sample_quality: Any, neutral: float, out: Any
) -> None:  # pragma: no cover - compiled
    # The quality of a provided sample, else the neutral value; -0.0 + 0.0 is 0.0, as in the
    # numpy path.
    block_out = out[start:stop]
    block_sample_quality = sample_quality[start:stop]
    block_has_sample = has_sample[start:stop]
    for row in range(stop - start):
        block_out[row] = (block_sample_quality[row] if block_has_sample[row] else neutral) + 0.0


@_jit
def _price_scores(
    start: int, stop: int, price_minor: Any, budget_min: Any, budget_max: Any, out: Any
) -> None:  # pragma: no cover - compiled
    # clip(headroom / span, 0, 1); a one-price budget (span 0): 1 at or below it, else 0.
    block_budget_max = budget_max[start:stop]
    block_price_minor = price_minor[start:stop]
    block_budget_min = budget_min[start:stop]
    block_out = out[start:stop]
    for row in range(stop - start):
        headroom = block_budget_max[row] - block_price_minor[row]
        span = block_budget_max[row] - block_budget_min[row]
        clipped = min(max(headroom / span, 0.0), 1.0)
        block_out[row] = clipped if span != 0 else (1.0 if headroom >= 0 else 0.0)


@_jit
def _sla_scores(
    start: int, stop: int, turnaround_ms: Any, required_turnaround_ms: Any, out: Any
) -> None:  # pragma: no cover - compiled
    # 1 without a requirement, else min(1, required / promised).
    block_required_turnaround_ms = required_turnaround_ms[start:stop]
    block_turnaround_ms = turnaround_ms[start:stop]
    block_out = out[start:stop]
    for row in range(stop - start):
        required = block_required_turnaround_ms[row]
        quotient = min(required / block_turnaround_ms[row], 1.0)
        block_out[row] = 1.0 if required == 0 else quotient


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
    block_tier = tier[start:stop]
    block_out = out[start:stop]
    block_certified_matches = certified_matches[start:stop]
    for row in range(stop - start):
        tier_value = block_tier[row]
        value = silver if tier_value == 1 else bronze
        value = gold if tier_value == 2 else value
        value = platinum if tier_value == 3 else value
        block_out[row] = value if block_certified_matches[row] > 0 else uncertified


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
    # (DUPLICATE_BID is decided later, in _duplicates_and_winners). One store per row, so it
    # vectorises.
    block_price_minor = price_minor[start:stop]
    block_hard_limit_turnaround_ms = hard_limit_turnaround_ms[start:stop]
    block_turnaround_ms = turnaround_ms[start:stop]
    block_submitted_at_ms = submitted_at_ms[start:stop]
    block_window_opens_ms = window_opens_ms[start:stop]
    block_window_closes_ms = window_closes_ms[start:stop]
    block_budget_max_minor = budget_max_minor[start:stop]
    block_currency_matches = currency_matches[start:stop]
    block_code = code[start:stop]
    block_eligible = eligible[start:stop]
    for row in range(stop - start):
        price, hard_limit = block_price_minor[row], block_hard_limit_turnaround_ms[row]
        submitted = block_submitted_at_ms[row]
        outside = (submitted < block_window_opens_ms[row]) | (
            submitted >= block_window_closes_ms[row]
        )
        value = (
            _SLA_BEYOND_HARD_LIMIT
            if (hard_limit > 0) & (block_turnaround_ms[row] > hard_limit)
            else 0
        )
        value = _PRICE_ABOVE_MAX if price > block_budget_max_minor[row] else value
        value = _PRICE_NOT_POSITIVE if price <= 0 else value
        value = _CURRENCY if not block_currency_matches[row] else value
        value = _OUTSIDE_WINDOW if outside else value
        block_code[row] = _NOT_ELIGIBLE if not block_eligible[row] else value


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
    block_price_score = price_score[start:stop]
    block_trust = trust[start:stop]
    block_confidence = confidence[start:stop]
    block_sample_score = sample_score[start:stop]
    block_sla_score = sla_score[start:stop]
    block_certification_score = certification_score[start:stop]
    block_code = code[start:stop]
    block_totals = totals[start - base : stop - base]
    for row in range(stop - start):
        weighted = block_price_score[row] * w_price
        weighted += block_trust[row] * w_trust
        weighted += block_confidence[row] * w_confidence
        weighted += block_sample_score[row] * w_sample
        weighted += block_sla_score[row] * w_sla
        weighted += block_certification_score[row] * w_certification
        weighted = min(weighted, 1.0)
        in_range &= weighted >= 0.0
        block_totals[row] = weighted if block_code[row] == 0 else 0.0
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
def _best_of(
    candidates: Any,
    found: int,
    totals: Any,
    base: int,
    code: Any,
    price: Any,
    submitted: Any,
    bid_id: Any,
) -> int:  # pragma: no cover - compiled
    # The first of candidates[:found] still accepted under _precedes, or -1 if none is.
    best = -1
    for position in range(found):
        row = candidates[position]
        if code[row] == 0 and (
            best < 0 or _precedes(row, best, base, totals, price, submitted, bid_id)
        ):
            best = row
    return best


@_jit
def _duplicates_and_winners(  # noqa: C901 - one loop nest per auction, by mode
    start: int,
    run_stops: Any,
    runs: int,
    mode: int,
    provider_id: Any,
    submitted_at_ms: Any,
    bid_id: Any,
    price_minor: Any,
    code: Any,
    totals: Any,
    base: int,
    owner: Any,
    candidates: Any,
    spare: Any,
    rank_out: Any,
    is_winner: Any,
) -> None:  # pragma: no cover - compiled
    # Loops 2 and 3, per auction of the block, in one pass over the auction's candidates (the
    # bids passing every other check, gathered without a branch):
    #
    # duplicates: among one provider's candidates, the first by (submitted_at_ms, bid_id, row)
    # counts; every other one is a DUPLICATE_BID (total 0). An open-addressing table keyed by
    # provider holds the kept row of each provider seen: owner[slot] is a row, and a slot is
    # live only if that row belongs to this auction (row >= first: rows only grow, so the
    # table is never cleared). The auction uses the first `size` slots, size >= 4 × its
    # candidates, so a probe almost never goes past its first slot.
    #
    # the winner (MODE_WINNERS): the running lexicographic maximum under _precedes of the
    # candidates first seen for their provider; if the auction had a duplicate, the running
    # maximum may have been a row rejected later, so it is taken again over the accepted
    # candidates (rare). MODE_RANKS: a stable sort of the accepted candidates.
    first = start
    for run in range(runs):
        last = run_stops[run]
        found = 0
        for row in range(first, last):
            candidates[found] = row
            found += code[row] == 0
        size = 16
        while size < 4 * found:
            size *= 2
        mask = size - 1
        duplicates = False
        best, best_total = -1, 0.0
        for position in range(found):
            row = candidates[position]
            provider = provider_id[row]
            slot = ((provider * _MIX) >> 40) & mask
            kept = owner[slot]
            while kept >= first and provider_id[kept] != provider:
                slot = (slot + 1) & mask
                kept = owner[slot]
            if kept < first:
                owner[slot] = row
                value = totals[row - base]
                if best < 0 or value > best_total:
                    best, best_total = row, value
                elif value == best_total and _precedes(
                    row, best, base, totals, price_minor, submitted_at_ms, bid_id
                ):
                    best = row
                continue
            duplicates = True
            earlier = submitted_at_ms[row] < submitted_at_ms[kept] or (
                submitted_at_ms[row] == submitted_at_ms[kept] and bid_id[row] < bid_id[kept]
            )
            loser = kept if earlier else row
            if earlier:
                owner[slot] = row
            code[loser] = _DUPLICATE
            totals[loser - base] = 0.0
        if mode == MODE_WINNERS:
            if duplicates:
                best = _best_of(
                    candidates,
                    found,
                    totals,
                    base,
                    code,
                    price_minor,
                    submitted_at_ms,
                    bid_id,
                )
            if best >= 0:
                is_winner[best] = True
        elif mode == MODE_RANKS:
            accepted = 0
            for position in range(found):
                row = candidates[position]
                candidates[accepted] = row
                accepted += code[row] == 0
            if accepted > 0:
                ordered = _sort_rows(
                    candidates,
                    spare,
                    accepted,
                    base,
                    totals,
                    price_minor,
                    submitted_at_ms,
                    bid_id,
                )
                for position in range(accepted):
                    rank_out[ordered[position]] = position + 1
                is_winner[ordered[0]] = True
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
    # The duplicates' table: 4 slots per candidate of the largest auction a valid batch holds.
    slots = 16
    while slots < 4 * min(count, bids_per_work_max):
        slots *= 2
    owner = np.full(slots, -1, dtype=np.int64)
    buffer_rows = block_rows + bids_per_work_max + 1
    local_total = np.empty(buffer_rows if mode == MODE_COMPONENTS else 0, dtype=np.float64)
    run_stops = np.empty(buffer_rows, dtype=np.int64)
    rows = np.empty(bids_per_work_max + 1, dtype=np.int64)
    spare = np.empty(bids_per_work_max + 1, dtype=np.int64)
    # The columns of the value screen read as unsigned (views, no copy).
    budget_min_bits = budget_min_minor.view(np.uint64)
    budget_max_bits = budget_max_minor.view(np.uint64)
    trust_bits = trust.view(np.uint64)
    confidence_bits = confidence.view(np.uint64)
    sample_bits = sample_score.view(np.uint64)
    required_bits = required_turnaround_ms.view(np.uint64)
    hard_limit_bits = hard_limit_turnaround_ms.view(np.uint64)
    certified_bits = certified_matches.view(np.uint64)
    tier_bits = tier.view(np.uint8)
    submitted_bits = submitted_at_ms.view(np.uint64)
    opens_bits = window_opens_ms.view(np.uint64)
    closes_bits = window_closes_ms.view(np.uint64)
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
            budget_min_bits,
            budget_max_bits,
            budget_min_minor,
            budget_max_minor,
            trust_bits,
            confidence_bits,
            sample_bits,
            turnaround_ms,
            required_bits,
            hard_limit_bits,
            certified_bits,
            tier_bits,
            submitted_bits,
            opens_bits,
            closes_bits,
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
        # Per auction: duplicates, then the winner or the ranks. An auction over
        # bids_per_work_max rejects the batch; the table has no room for it, so it is skipped.
        if largest <= bids_per_work_max:
            _duplicates_and_winners(
                start,
                run_stops,
                runs,
                mode,
                provider_id,
                submitted_at_ms,
                bid_id,
                price_minor,
                reject_reason,
                totals,
                base,
                owner,
                rows,
                spare,
                rank,
                is_winner,
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
