"""`aex serve --weights FILE|PRESET`: the exchange scores bids with the weights `aex tune` wrote,
validated once at startup (a bad file stops the server with the reason, never a request)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aex.core.scoring import PRESETS, weights_to_json
from serve.market.evaluation import DEFAULT_WEIGHTS
from serve.settings import ImproperlyConfiguredError, load_weights
from tests.serve.market_helpers import bid, close_now, consumer, provider, submit_work
from tests.serve.server import TEST_ENV, Server

PRICE_ONLY = {
    "price": 1,
    "trust": 0,
    "confidence": 0,
    "sample_work": 0,
    "sla": 0,
    "certification": 0,
}
CONFIDENCE_ONLY = {**PRICE_ONLY, "price": 0, "confidence": 1}


def write_weights(path: Path, name: str, weights: dict[str, float]) -> Path:
    path.write_text(json.dumps({"name": name, "weights": weights}))
    return path


def test_no_source_means_the_spec_s_balanced_preset() -> None:
    assert load_weights(None) == DEFAULT_WEIGHTS
    assert DEFAULT_WEIGHTS.weights == PRESETS["balanced"]


def test_a_preset_name_loads_that_preset() -> None:
    loaded = load_weights("lowest_price")
    assert (loaded.name, loaded.weights) == ("lowest_price", PRESETS["lowest_price"])


def test_a_tune_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps(weights_to_json(PRESETS["best_quality"], name="tuned")))
    loaded = load_weights(str(path))
    assert (loaded.name, loaded.weights) == ("tuned", PRESETS["best_quality"])


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"name": "x", "weights": {**PRICE_ONLY, "price": 0.5}}),  # sums to 0.5
        json.dumps({"name": "x", "weights": {**PRICE_ONLY, "trust": -1, "price": 2}}),
        json.dumps({"name": "x"}),
    ],
)
def test_a_bad_weights_file_is_refused_at_startup(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ImproperlyConfiguredError, match="weights file"):
        load_weights(str(path))


def test_a_missing_weights_file_is_refused_at_startup(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfiguredError, match="neither a preset"):
        load_weights(str(tmp_path / "absent.json"))


def test_aex_serve_refuses_to_start_with_a_bad_weights_file(tmp_path: Path) -> None:
    bad = write_weights(tmp_path / "bad.json", "bad", {**PRICE_ONLY, "price": 0.3})
    command = [sys.executable, "-m", "aex.cli", "serve", "--port", "9", "--weights", str(bad)]
    result = subprocess.run(
        [*command, "--data-dir", str(tmp_path / "data")],
        env={**TEST_ENV, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "weights file" in result.stderr


@pytest.fixture(scope="module", params=["price_only", "confidence_only"])
def weighted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, httpx.Client]]:
    root = tmp_path_factory.mktemp(request.param)
    weights = PRICE_ONLY if request.param == "price_only" else CONFIDENCE_ONLY
    path = write_weights(root / "tuned.json", request.param, weights)
    server = Server(root / "data", args=("--weights", str(path))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield request.param, client
    finally:
        server.stop()


def test_the_loaded_weights_decide_the_award(weighted: tuple[str, httpx.Client]) -> None:
    name, client = weighted
    acme = consumer(client)
    cheap, confident = provider(client), provider(client)
    work = submit_work(client, acme)
    assert bid(client, cheap, work["work_id"], "60", confidence=0.2).status_code == 201
    assert bid(client, confident, work["work_id"], "190", confidence=0.99).status_code == 201
    close_now(client, work["work_id"])
    evaluation = client.get(f"/v1/work/{work['work_id']}/evaluation", headers=acme.headers).json()
    winner = next(row for row in evaluation["bids"] if row["is_winner"])
    expected = cheap if name == "price_only" else confident
    assert winner["provider_id"] == expected.provider_id
    assert evaluation["weights"] == name


def test_a_rules_file_turns_on_confidence_calibration_and_a_reputation_rule(
    tmp_path: Path,
) -> None:
    from aex.core.calibration import ConfidenceCalibration
    from aex.core.reputation import ReputationRule

    path = tmp_path / "rules.json"
    document = {
        **weights_to_json(PRESETS["balanced"], name="calibrated"),
        "confidence_calibration": {"evidence_contracts": 20},
        "reputation": {"rule": "success_ratio", "prior_alpha": 1, "prior_beta": 1},
    }
    path.write_text(json.dumps(document))
    loaded = load_weights(str(path))
    assert loaded.calibration == ConfidenceCalibration(evidence_contracts=20.0)
    assert loaded.reputation.rule is ReputationRule.SUCCESS_RATIO
    # the default stays the spec: plain stated confidence, the five-component reputation
    assert DEFAULT_WEIGHTS.calibration is None
    assert DEFAULT_WEIGHTS.reputation.rule is ReputationRule.SPEC


def test_a_bad_calibration_is_refused_at_startup_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    document = {**weights_to_json(PRESETS["balanced"]), "confidence_calibration": {"k": 1}}
    path.write_text(json.dumps(document))
    with pytest.raises(ImproperlyConfiguredError, match=r"confidence_calibration\.k"):
        load_weights(str(path))
