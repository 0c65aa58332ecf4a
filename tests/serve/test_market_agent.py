"""The reference provider agent (examples/provider_agent.py) against a real exchange."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from aex.core import webhook_signature as signature
from tests.serve.conftest import sign_up
from tests.serve.market_helpers import (
    balance,
    close_now,
    consumer,
    provider,
    submit_work,
    wait_for_status,
)
from tests.serve.server import Server, free_port

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
    assert contract["provider_payout"] == "119.00"  # paid when the dispute window ends
    assert balance(client, bot.owner) == ("0.00", "0.00")


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


def test_the_reference_agent_works_from_signed_webhooks_and_refuses_forged_ones(
    server: Server, client: httpx.Client
) -> None:
    acme, owner, port = consumer(client), sign_up(client, "Hook Agents", "PROVIDER"), free_port()
    body = {
        "name": "HookAgent",
        "type": "AI_AGENT",
        "capabilities": ["code_review"],
        "category": "TECHNOLOGY",
        "endpoint": f"http://127.0.0.1:{port}/hook",
    }
    created = client.post("/v1/providers", json=body, headers=owner.headers).json()
    key = {"X-API-Key": created["api_key"]}
    subscription = {"provider_id": created["provider_id"], "categories": ["TECHNOLOGY"]}
    assert client.post("/v1/subscriptions", json=subscription, headers=key).status_code == 201
    command = [
        sys.executable,
        str(AGENT),
        "--url",
        server.url,
        "--provider-id",
        created["provider_id"],
        "--api-key",
        created["api_key"],
        "--max-contracts",
        "1",
        "--webhook-port",
        str(port),
    ]
    environment = {**os.environ, "AEX_WEBHOOK_SECRET": created["webhook_secret"]}
    agent = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment)
    try:
        assert agent.stdout is not None
        assert agent.stdout.readline().strip() == "listening"
        now_s = int(time.time())
        old_key = hashlib.sha256(created["api_secret"].encode()).hexdigest()
        raw = b'{"event":"work.submitted","payload":{}}'
        forged = {"x-aex-timestamp": str(now_s), "x-aex-signature": signature(old_key, now_s, raw)}
        hook = f"http://127.0.0.1:{port}/hook"
        assert httpx.post(hook, content=raw, headers=forged).status_code == 401
        work = submit_work(client, acme)
        assert agent.stdout.readline().startswith(f"bid on {work['work_id']}: 201")
        close_now(client, work["work_id"])
        assert agent.wait(timeout=30) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
    awarded = wait_for_status(client, acme, work["work_id"], {"AWARDED"})
    contract = client.get(f"/v1/contracts/{awarded['contract_id']}", headers=acme.headers).json()
    assert contract["status"] == "SETTLED"
