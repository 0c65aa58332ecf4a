"""The engine: reproducible from its seed, calling the core, exact per-tick reputation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aex.core import Money, counts_as_evidence
from aex.marketlog import TABLES
from aex.sim import _core
from aex.sim.runner import simulate, with_weights
from aex.sim.scenario import ScenarioParams


def tables(params: ScenarioParams, *, prefetch: bool = True) -> dict[str, list[tuple[object, ...]]]:
    _, con = simulate(params, prefetch=prefetch)
    out = {}
    for table in TABLES:
        if table == "runs":
            continue
        columns = ", ".join(c for c, _ in TABLES[table])
        out[table] = con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
    return out


@pytest.mark.parametrize("fixture", ["reference", "mixed"])
def test_same_seed_gives_identical_market_logs(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    params = request.getfixturevalue(fixture)
    first, second = tables(params), tables(params)
    assert first == second
    assert len(first["awards"]) > 0


@pytest.mark.parametrize("fixture", ["reference", "mixed"])
def test_drawing_ahead_on_a_thread_gives_the_serial_market_logs(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    params = request.getfixturevalue(fixture)
    assert tables(params, prefetch=True) == tables(params, prefetch=False)


def test_different_seeds_give_different_market_logs(reference: ScenarioParams) -> None:
    other = dataclasses.replace(reference, seed=reference.seed + 1)  # type: ignore[operator]
    assert tables(reference)["bids"] != tables(other)["bids"]


def test_replications_are_independent_streams(reference: ScenarioParams) -> None:
    _, con = simulate(reference, replication=0)
    simulate(reference, out=con, replication=1)
    prices = con.execute(
        "SELECT run_id, list(price_minor ORDER BY work_id) FROM awards GROUP BY run_id"
    ).fetchall()
    assert prices[0][1] != prices[1][1]


def test_winner_is_the_cores_winner_on_every_logged_auction(reference: ScenarioParams) -> None:
    _, con = simulate(reference)
    rows = con.execute(
        "SELECT work_id, price_score, trust_score, confidence_score, sample_score, sla_score,"
        " certification_score, reject_reason, price_minor, submitted_at_ms, bid_id, is_winner"
        " FROM bids ORDER BY work_id, bid_id"
    ).fetchall()
    cols = [np.array(c) for c in zip(*rows, strict=True)]
    components = _core.Components(
        *(c.astype(np.float64) for c in cols[1:7]), reject_reason=cols[7].astype(np.uint8)
    )
    scored = _core.rank_auctions(
        cols[0].astype(np.int64),
        components,
        reference.weights,
        price_minor=cols[8].astype(np.int64),
        submitted_at_ms=cols[9].astype(np.int64),
        bid_id=cols[10].astype(np.int64),
    )
    assert np.array_equal(np.asarray(scored.is_winner), cols[11].astype(bool))
    awarded = con.execute("SELECT bid_id FROM awards ORDER BY bid_id").fetchall()
    assert sorted(cols[10][np.asarray(scored.is_winner)]) == [b for (b,) in awarded]


@pytest.mark.parametrize("rule", ["first_score", "second_score"])
def test_awards_pay_the_cores_contract_price_and_bids_keep_their_price(
    reference: ScenarioParams, rule: str
) -> None:
    scoring = dataclasses.replace(reference.scoring, payment_rule=rule)
    params = dataclasses.replace(reference, scoring=scoring)
    _, con = simulate(params)
    rows = con.execute(
        "SELECT b.work_id, b.price_score, b.trust_score, b.confidence_score, b.sample_score,"
        " b.sla_score, b.certification_score, b.reject_reason, b.total, b.rank, b.is_winner,"
        " b.price_minor, w.budget_min_minor, w.budget_max_minor"
        " FROM bids b JOIN work w USING (run_id, work_id) ORDER BY b.work_id, b.bid_id"
    ).fetchall()
    cols = [np.array(c) for c in zip(*rows, strict=True)]
    scored = _core.ScoredBids(
        *(c.astype(np.float64) for c in cols[1:7]),
        reject_reason=cols[7].astype(np.uint8),
        total=cols[8].astype(np.float64),
        rank=cols[9].astype(np.int32),
        is_winner=cols[10].astype(bool),
    )
    expected = _core.contract_prices(
        cols[0].astype(np.int64),
        scored,
        params.weights,
        params.rules.payment_rule,
        price_minor=cols[11].astype(np.int64),
        budget_min_minor=cols[12].astype(np.int64),
        budget_max_minor=cols[13].astype(np.int64),
    )
    awards = con.execute(
        "SELECT a.price_minor, b.price_minor, w.budget_max_minor FROM awards a"
        " JOIN bids b ON b.run_id = a.run_id AND b.work_id = a.work_id AND b.bid_id = a.bid_id"
        " JOIN work w ON w.run_id = a.run_id AND w.work_id = a.work_id ORDER BY a.work_id"
    ).fetchall()
    assert [paid for paid, _, _ in awards] == expected.tolist()
    assert all(bid <= paid <= budget for paid, bid, budget in awards)
    raised = sum(paid > bid for paid, bid, _ in awards)
    assert (raised == 0) == (rule == "first_score"), raised
    settled = con.execute(
        "SELECT s.price_minor, s.fee_minor, a.price_minor FROM settlements s"
        " JOIN awards a USING (run_id, work_id)"
    ).fetchall()
    assert settled
    for price, fee, awarded in settled:
        assert price == awarded
        assert fee == price * params.scoring.fee_bps // 10_000


def test_other_weights_keep_the_scenarios_payment_rule_fee_and_calibration(
    reference: ScenarioParams,
) -> None:
    scoring = dataclasses.replace(
        reference.scoring, payment_rule="second_score", calibration={"evidence_contracts": 5.0}
    )
    params = dataclasses.replace(reference, scoring=scoring)
    tuned = with_weights(params, _core.PRESETS["lowest_price"])
    assert tuned.weights == _core.PRESETS["lowest_price"]
    assert tuned.rules.payment_rule is _core.PaymentRule.SECOND_SCORE
    assert tuned.rules.calibration == params.rules.calibration
    assert tuned.scoring.fee_bps == params.scoring.fee_bps


def test_trust_is_the_exact_reputation_at_the_start_of_each_tick(reference: ScenarioParams) -> None:
    # Blocks clear several ticks at once; each bid's trust must still be (s+1)/(n+2) from every
    # outcome of earlier ticks that counts as evidence (the exchange's rule: a contract of at
    # least one whole unit that pays a fee), as if ticks ran one by one.
    _, con = simulate(reference)
    outcomes = [
        (provider, tick, success)
        for provider, tick, success, price_minor in con.execute(
            "SELECT o.provider_id, o.tick, o.success, a.price_minor FROM outcomes o"
            " JOIN awards a USING (run_id, work_id)"
        ).fetchall()
        if counts_as_evidence(Money(int(price_minor), "USD"))
    ]
    bids = con.execute("SELECT provider_id, tick, trust_score FROM bids").fetchall()
    for provider, tick, trust in bids:
        history = [ok for p, t, ok in outcomes if p == provider and t < tick]
        expected = (sum(history) + 1) / (len(history) + 2)
        assert trust == pytest.approx(expected, abs=1e-12)


def test_settlements_conserve_every_cent(mixed: ScenarioParams) -> None:
    _, con = simulate(mixed)
    rows = con.execute("SELECT price_minor, fee_minor, payout_minor FROM settlements").fetchall()
    assert rows
    for price, fee, payout in rows:
        assert fee + payout == price
        assert fee == price * mixed.scoring.fee_bps // 10_000


def test_only_successful_work_is_settled(mixed: ScenarioParams) -> None:
    _, con = simulate(mixed)
    unsettled = con.execute(
        "SELECT count(*) FROM outcomes o LEFT JOIN settlements s USING (run_id, work_id)"
        " WHERE o.success <> (s.work_id IS NOT NULL)"
    ).fetchall()
    assert unsettled == [(0,)]


def test_weight_vectors_see_common_random_numbers(reference: ScenarioParams) -> None:
    price_heavy = with_weights(reference, _core.PRESETS["lowest_price"])
    a, b = tables(reference), tables(price_heavy)
    assert a["work"] == b["work"]
    first_tick = [(r[0], r[2], r[4]) for r in a["bids"] if r[3] == 0]
    assert first_tick == [(r[0], r[2], r[4]) for r in b["bids"] if r[3] == 0]
    assert a["awards"] != b["awards"]


def test_whitewashers_reregister_under_new_identities(mixed: ScenarioParams) -> None:
    _, con = simulate(dataclasses.replace(mixed, ticks=120))
    per_slot = con.execute(
        "SELECT max(n) FROM (SELECT slot, count(*) AS n FROM providers"
        " WHERE strategy = 'whitewasher' GROUP BY slot)"
    ).fetchall()
    assert per_slot[0][0] > 1
