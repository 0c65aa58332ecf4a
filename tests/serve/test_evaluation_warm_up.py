"""The server warms the scoring kernel at startup, on a thread, through the one-auction path."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from aex.core import _scoring_kernel, scoring
from serve import app as app_module
from serve.market import evaluation
from serve.market.evaluation import warm_up, warm_up_in_background
from serve.settings import Settings
from serve.stores.sqlite import SqliteStore


def test_warm_up_scores_one_auction_through_the_compiled_kernel() -> None:
    assert warm_up() >= 0.0
    # The kernel the server calls for one auction is compiled (or loaded) afterwards.
    assert _scoring_kernel.score_batch.signatures


def test_the_background_warm_up_finishes() -> None:
    thread = warm_up_in_background()
    thread.join(timeout=120)
    assert not thread.is_alive()


def test_the_app_warms_the_kernel_at_startup(tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path, env={})
    store = SqliteStore(settings.database_path, synchronous=settings.sqlite_synchronous)
    litestar = app_module.build_litestar(store, settings)
    assert warm_up_in_background in litestar.on_startup


def _auction() -> tuple[evaluation.WorkTerms, list[evaluation.BidRow]]:
    terms = evaluation.WorkTerms(1_000, 5_000, 60_000, 120_000, 0, 10_000)
    rows = [
        evaluation.BidRow(
            f"bid-{n}",
            f"provider-{n % 3}",
            1_000 + 397 * n,
            (n % 5) / 4,
            n % 2 == 0,
            30_000 + 20_000 * n,
            100 * n,
            (n % 7) / 6,
            n % 4,
            n % 3,
            n != 4,
        )
        for n in range(9)
    ]
    return terms, rows


def test_before_the_kernel_is_warm_a_window_is_scored_by_the_numpy_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A restart during an open window closes it at once: the closer never waits for a compile.
    def no_kernel(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("the compiled kernel was called before it was warm")

    monkeypatch.setattr(evaluation, "_KERNEL_READY", threading.Event())
    monkeypatch.setattr(scoring, "_compiled_score", no_kernel)
    terms, rows = _auction()
    scored = evaluation.evaluate(
        terms, rows, now_ms=10_000, weights=evaluation.DEFAULT_WEIGHTS.weights
    )
    assert sum(row.is_winner for row in scored) == 1
    assert not evaluation.kernel_ready()


def test_the_numpy_engine_and_the_kernel_award_the_same_bid_with_the_same_scores() -> None:
    terms, rows = _auction()
    weights = evaluation.DEFAULT_WEIGHTS.weights
    by_engine = [
        evaluation.evaluate(terms, rows, now_ms=10_000, weights=weights, engine=engine)
        for engine in ("numpy", "compiled")
    ]
    assert by_engine[0] == by_engine[1]


def test_the_warm_up_switches_the_exchange_to_the_kernel() -> None:
    warm_up()
    assert evaluation.kernel_ready()
