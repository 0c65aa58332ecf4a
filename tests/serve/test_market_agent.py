"""The reference provider agent (examples/provider_agent.py) against a real exchange."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import httpx

from serve.webhooks import signature
from tests.serve.market_helpers import (
    balance,
    close_now,
    consumer,
    provider,
    submit_work,
    wait_for_status,
)
from tests.serve.server import Server

AGENT = Path(__file__).parents[2] / "examples" / "provider_agent.py"


def test_the_reference_agent_hears_bids_wins_and_completes(
    server: Server, client: httpx.Client
) -> None:
    acme, bot = consumer(client), provider(client)
    command = [
        sys.executable,
        str(AGENT),
        "--url",
        server.url,
        "--provider-id",
        bot.provider_id,
        "--api-key",
        bot.api_key,
        "--max-contracts",
        "1",
    ]
    agent = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert agent.stdout is not None
        assert agent.stdout.readline().strip() == "listening"
        work = submit_work(client, acme)
        assert agent.stdout.readline().startswith(f"bid on {work['work_id']}: 201")
        close_now(client, work["work_id"])
        assert agent.wait(timeout=20) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
    awarded = wait_for_status(client, acme, work["work_id"], {"AWARDED"})
    contract = client.get(f"/v1/contracts/{awarded['contract_id']}", headers=acme.headers).json()
    assert contract["status"] == "SETTLED"
    assert contract["price"] == "140.00"  # budget 50..200, markup 0.6
    assert balance(client, bot.owner) == ("119.00", "0.00")


def test_the_reference_agent_checks_webhooks_with_the_webhook_secret_only() -> None:
    spec = importlib.util.spec_from_file_location("provider_agent", AGENT)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    webhook_secret, api_secret = "aex_whsec_" + "1" * 64, "aex_sk_live_" + "2" * 64
    body, now_s = b'{"event":"work.submitted"}', int(time.time())
    signed = {
        "x-aex-timestamp": str(now_s),
        "x-aex-signature": signature(webhook_secret, now_s, body),
    }
    assert example.verify_webhook(webhook_secret, signed, body, now_s=now_s)
    assert not example.verify_webhook(webhook_secret, signed, body + b" ", now_s=now_s)
    assert not example.verify_webhook(webhook_secret, signed, body, now_s=now_s + 301)
    # The old keying (the api secret's SHA-256, which the database holds) signs nothing now.
    old_key = hashlib.sha256(api_secret.encode()).hexdigest()
    forged = {**signed, "x-aex-signature": signature(old_key, now_s, body)}
    assert not example.verify_webhook(webhook_secret, forged, body, now_s=now_s)
