"""A reference provider agent: listens for work over server-sent events, bids, completes.

    python examples/provider_agent.py --url http://127.0.0.1:8080 \\
        --provider-id prov_... --api-key aex_pk_live_... [--markup 0.6] [--max-contracts N]

It opens `GET /v1/notifications/stream` with its provider key and reacts to:
- `work.submitted`: bids `budget.min + markup × (budget.max − budget.min)` with a 2h estimate
  and a 4h turnaround;
- `contract.awarded`: reports progress, "does the work", then completes with metrics that meet
  every success criterion (threshold + margin for `>=`/`>`, threshold − margin for `<=`/`<`);
- `bid.lost`, `settlement.completed`: logs them.
It reconnects with Last-Event-ID when the stream drops, so no notification is missed.

Written on the SDK (`aex.client`): `Client` sends every write with an Idempotency-Key and
retries it safely, `Client.notifications()` is the resuming stream, `verify_webhook` the
signature check; the agent itself holds only its bidding and completion rules.

With `--webhook-port N` it takes the same notifications as webhooks instead (register the
provider with `"endpoint": "http://<this host>:N/hook"`): every POST is checked with the
provider's webhook secret (`aex_whsec_...`, shown once at registration or by
`POST /v1/providers/{id}/webhook-secret`; pass it in AEX_WEBHOOK_SECRET or
`--webhook-secret`), never with the api secret: `X-AEX-Signature` must be
`sha256=` + hex HMAC-SHA256(webhook secret, "<X-AEX-Timestamp>.<body>") and the timestamp within
5 minutes; anything else is answered 401 and ignored. Deliveries may repeat: deduplicated on
`X-AEX-Event-Id`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from aex.client import Client, ProblemError, verify_webhook

METRIC_MARGIN = 0.05

__all__ = ["Agent", "bid_price", "main", "metrics_meeting", "verify_webhook"]


def bid_price(work: dict[str, Any], markup: Decimal) -> str:
    budget = work["budget"]
    low, high = Decimal(str(budget["min"])), Decimal(str(budget["max"]))
    return str((low + markup * (high - low)).quantize(Decimal("0.01")))


def metrics_meeting(criteria: list[dict[str, Any]]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for criterion in criteria:
        threshold = float(criterion["threshold"])
        above = criterion.get("comparison", ">=") in (">=", ">")
        metrics[criterion["metric"]] = threshold + (METRIC_MARGIN if above else -METRIC_MARGIN)
    return metrics


class Agent:
    def __init__(self, aex: Client, provider_id: str, markup: Decimal) -> None:
        self.aex = aex
        self.provider_id = provider_id
        self.markup = markup
        self.criteria: dict[str, list[dict[str, Any]]] = {}
        self.completed = 0

    def on_work(self, payload: dict[str, Any]) -> None:
        work = payload["work"]
        self.criteria[payload["work_id"]] = work["success_criteria"]
        try:
            self.aex.submit_bid(
                work_id=payload["work_id"],
                provider_id=self.provider_id,
                price=bid_price(work, self.markup),
                confidence=0.9,
                estimated_duration="2h",
                max_turnaround="4h",
            )
            outcome = "201"
        except ProblemError as problem:  # e.g. the window closed: the problem says why
            outcome = f"{problem.status} {problem.slug}"
        print(f"bid on {payload['work_id']}: {outcome}", flush=True)

    def on_award(self, payload: dict[str, Any]) -> None:
        contract_id = payload["contract_id"]
        self.aex.report_progress(contract_id, {"percent": 50})
        criteria = self.criteria.pop(payload["work_id"], [])
        try:
            done = self.aex.complete(
                contract_id, results={"summary": "reviewed"}, metrics=metrics_meeting(criteria)
            )
            status = done.get("status")
        except ProblemError as problem:
            status = f"{problem.status} {problem.slug}"
        print(f"completed {contract_id}: {status}", flush=True)
        self.completed += 1

    def handle(self, name: str, payload: dict[str, Any]) -> None:
        if name == "work.submitted":
            self.on_work(payload)
        elif name == "contract.awarded":
            self.on_award(payload)
        elif name in ("bid.lost", "settlement.completed"):
            print(f"{name}: {payload.get('work_id') or payload.get('contract_id')}", flush=True)


def run(url: str, provider_id: str, api_key: str, markup: Decimal, max_contracts: int) -> int:
    with Client(url, api_key=api_key) as aex:
        agent = Agent(aex, provider_id, markup)
        try:
            for notification in aex.notifications():  # resumes with Last-Event-ID by itself
                if notification.event == "ready":
                    print("listening", flush=True)
                    continue
                agent.handle(notification.event, notification.json()["payload"])
                if 0 < max_contracts <= agent.completed:
                    return 0
        except ProblemError as problem:
            print(f"stream refused: {problem.status} {problem.slug}", file=sys.stderr)
            return 1
    return 0


def serve_webhooks(
    url: str, api_key: str, agent_args: tuple[str, Decimal, int], port: int, webhook_secret: str
) -> int:
    """Takes the notifications as signed webhooks on 127.0.0.1:`port` instead of the stream."""
    provider_id, markup, max_contracts = agent_args
    seen: set[str] = set()
    with Client(url, api_key=api_key) as aex:
        agent = Agent(aex, provider_id, markup)

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = dict(self.headers.items())
                if not verify_webhook(webhook_secret, headers, body, now_s=int(time.time())):
                    self.send_response(401)  # not from the exchange, or replayed late
                    self.end_headers()
                    return
                self.send_response(204)
                self.end_headers()
                event_id = self.headers.get("x-aex-event-id", "")
                if event_id not in seen:
                    seen.add(event_id)
                    event = self.headers.get("x-aex-event", "")
                    agent.handle(event, json.loads(body)["payload"])

            def log_message(self, *args: Any) -> None:
                pass

        with HTTPServer(("127.0.0.1", port), Hook) as receiver:
            print("listening", flush=True)
            while max_contracts <= 0 or agent.completed < max_contracts:
                receiver.handle_request()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--provider-id", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--markup", type=Decimal, default=Decimal("0.6"))
    parser.add_argument("--max-contracts", type=int, default=0, help="stop after N (0: never)")
    parser.add_argument("--webhook-port", type=int, default=0, help="take webhooks on this port")
    parser.add_argument("--webhook-secret", default=os.environ.get("AEX_WEBHOOK_SECRET", ""))
    args = parser.parse_args(argv)
    if args.webhook_port:
        if not args.webhook_secret:
            parser.error("--webhook-port needs the webhook secret (AEX_WEBHOOK_SECRET)")
        agent_args = (args.provider_id, args.markup, args.max_contracts)
        return serve_webhooks(
            args.url, args.api_key, agent_args, args.webhook_port, args.webhook_secret
        )
    return run(args.url, args.provider_id, args.api_key, args.markup, args.max_contracts)


if __name__ == "__main__":
    sys.exit(main())
