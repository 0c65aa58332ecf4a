"""The server warms the scoring kernel at startup, on a thread, through the one-auction path."""

from __future__ import annotations

from pathlib import Path

from aex.core import _scoring_kernel
from serve import app as app_module
from serve.evaluation import warm_up, warm_up_in_background
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
