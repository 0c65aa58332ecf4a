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
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx

RECONNECT_S = 1.0
METRIC_MARGIN = 0.05
WEBHOOK_REPLAY_WINDOW_S = 300


def verify_webhook(
    webhook_secret: str, headers: Mapping[str, str], body: bytes, *, now_s: int
) -> bool:
    """A receiver's check (headers with lower-case names): a fresh timestamp and the HMAC keyed
    with the webhook secret. The same check as aex/core/webhook_signing.py, with no AEX code."""
    try:
        timestamp = int(headers["x-aex-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(now_s - timestamp) > WEBHOOK_REPLAY_WINDOW_S:
        return False
    mac = hmac.new(webhook_secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), headers.get("x-aex-signature", ""))


def sse(response: httpx.Response) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(event name, id, data) for every server-sent event on the stream."""
    name, event_id, data = "message", "", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("id:"):
            event_id = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data += line.split(":", 1)[1].strip()
        elif line == "" and data:
            yield name, event_id, json.loads(data)
            name, data = "message", ""


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
    def __init__(self, http: httpx.Client, provider_id: str, markup: Decimal) -> None:
        self.http = http
        self.provider_id = provider_id
        self.markup = markup
        self.criteria: dict[str, list[dict[str, Any]]] = {}
        self.completed = 0

    def on_work(self, payload: dict[str, Any]) -> None:
        work = payload["work"]
        self.criteria[payload["work_id"]] = work["success_criteria"]
        body = {
            "work_id": payload["work_id"],
            "provider_id": self.provider_id,
            "price": bid_price(work, self.markup),
            "confidence": 0.9,
            "estimated_duration": "2h",
            "sla": {"max_turnaround": "4h"},
        }
        response = self.http.post("/v1/bids", json=body)
        print(f"bid on {payload['work_id']}: {response.status_code}", flush=True)

    def on_award(self, payload: dict[str, Any]) -> None:
        contract_id = payload["contract_id"]
        self.http.post(f"/v1/contracts/{contract_id}/progress", json={"percent": 50})
        criteria = self.criteria.pop(payload["work_id"], [])
        body = {"results": {"summary": "reviewed"}, "metrics": metrics_meeting(criteria)}
        response = self.http.post(f"/v1/contracts/{contract_id}/complete", json=body)
        status = response.json().get("status") if response.status_code == 200 else response.text
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
    headers = {"X-API-Key": api_key}
    last_id: str | None = None
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        agent = Agent(http, provider_id, markup)
        while max_contracts <= 0 or agent.completed < max_contracts:
            stream_headers = {} if last_id is None else {"Last-Event-ID": last_id}
            try:
                with http.stream(
                    "GET", "/v1/notifications/stream", headers=stream_headers, timeout=None
                ) as stream:
                    if stream.status_code != 200:
                        print(f"stream refused: {stream.status_code}", file=sys.stderr)
                        return 1
                    for name, event_id, body in sse(stream):
                        if name == "ready":
                            print("listening", flush=True)
                            continue
                        last_id = event_id or last_id
                        agent.handle(name, body["payload"])
                        if 0 < max_contracts <= agent.completed:
                            return 0
            except httpx.HTTPError as error:
                print(f"stream dropped ({error}); reconnecting", file=sys.stderr)
                time.sleep(RECONNECT_S)
    return 0


def serve_webhooks(
    url: str, api_key: str, agent_args: tuple[str, Decimal, int], port: int, webhook_secret: str
) -> int:
    """Takes the notifications as signed webhooks on 127.0.0.1:`port` instead of the stream."""
    provider_id, markup, max_contracts = agent_args
    seen: set[str] = set()
    with httpx.Client(base_url=url, headers={"X-API-Key": api_key}, timeout=30) as http:
        agent = Agent(http, provider_id, markup)

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if not verify_webhook(webhook_secret, headers, body, now_s=int(time.time())):
                    self.send_response(401)  # not from the exchange, or replayed late
                    self.end_headers()
                    return
                self.send_response(204)
                self.end_headers()
                event_id = headers.get("x-aex-event-id", "")
                if event_id not in seen:
                    seen.add(event_id)
                    agent.handle(headers.get("x-aex-event", ""), json.loads(body)["payload"])

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
