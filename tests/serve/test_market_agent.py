"""The reference provider agent (examples/provider_agent.py) against a real exchange."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

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
    assert contract["provider_payout"] == "119.00"  # paid when the dispute window ends
    assert balance(client, bot.owner) == ("0.00", "0.00")
