"""The reference market (scenarios/reference_reverse_auction.toml) as an idiomatic Mesa 3 model:
the baseline of bench_sim's "aex sim vs Mesa" figure (issue 14: the whole `aex sim` command at
least 100x as many auctions a second as this model of the same market).

Idiomatic means as the Mesa documentation builds a model: agents with their own state and a
`step`, an `AgentSet` the model calls each tick, the model's `random`, a `DataCollector` for
the model-level measures. Nothing vectorised: that is the difference being measured. The market
is the scenario's, with its rules as stated in the scenario file's header (the exchange's SLA
component min(1, required / promised) for promises ~ U(2 h, 8 h), the success-ratio reputation
(s+1)/(n+2) updated after each tick, the top score winning, success ~ Bernoulli(quality), the
15% fee on successful work, prices in cents).

    python -m bench.mesa_reference TICKS    prints one JSON line: auctions, wall s, auctions/s
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import mesa

PROVIDERS = 1_000
WORK_PER_TICK = 100
BID_PROBABILITY = 0.05
WEIGHTS = {"price": 0.35, "trust": 0.30, "confidence": 0.10, "sla": 0.15, "certification": 0.10}
FEE_BPS = 1_500
REQUIRED_TURNAROUND_H = 2.0
SEED = 20260101


class Provider(mesa.Agent):  # type: ignore[misc]
    """A provider: its quality, cost, stated confidence, SLA promise, certification and record."""

    def __init__(self, model: ReferenceMarket) -> None:
        super().__init__(model)
        rng = model.random
        self.quality = rng.betavariate(4.0, 2.0)
        self.cost_cents = rng.uniform(50.0, 150.0)
        self.confidence = min(1.0, max(0.0, self.quality + rng.gauss(0.0, 0.1)))
        self.promised_turnaround_h = rng.uniform(2.0, 8.0)
        self.certified = rng.random() < 0.3
        self.successes = 0
        self.jobs = 0
        self.reputation = 0.5  # (0 + 1) / (0 + 2)

    def bid(self, budget_cents: float) -> float | None:
        """A cost-plus price for a work item it chose to bid on, None above the budget."""
        price = round(self.cost_cents * (1.0 + self.random.uniform(0.05, 0.30)))
        return price if price <= budget_cents else None

    def score(self, price: float, budget_cents: float) -> float:
        sla = min(1.0, REQUIRED_TURNAROUND_H / self.promised_turnaround_h)
        total: float = (
            WEIGHTS["price"] * (1.0 - price / budget_cents)
            + WEIGHTS["trust"] * self.reputation
            + WEIGHTS["confidence"] * self.confidence
            + WEIGHTS["sla"] * sla
            + WEIGHTS["certification"] * (1.0 if self.certified else 0.0)
        )
        return total

    def step(self) -> None:
        """After the tick's auctions: the reputation from the record, (s + 1) / (n + 2)."""
        self.reputation = (self.successes + 1) / (self.jobs + 2)


class ReferenceMarket(mesa.Model):  # type: ignore[misc]
    def __init__(self, seed: int = SEED) -> None:
        super().__init__(seed=seed)
        Provider.create_agents(self, PROVIDERS)
        self.auctions = 0
        self.successes = 0
        self.fees_cents = 0
        self.datacollector = mesa.DataCollector(
            model_reporters={"auctions": "auctions", "successes": "successes", "fees": "fees_cents"}
        )

    def step(self) -> None:
        providers = list(self.agents)
        for _ in range(WORK_PER_TICK):
            budget_cents = self.random.uniform(100.0, 300.0)
            best: tuple[float, Provider, float] | None = None
            for provider in providers:
                if self.random.random() >= BID_PROBABILITY:
                    continue
                price = provider.bid(budget_cents)
                if price is None:
                    continue
                score = provider.score(price, budget_cents)
                if best is None or score > best[0]:
                    best = (score, provider, price)
            if best is None:
                continue
            _, winner, price = best
            self.auctions += 1
            winner.jobs += 1
            if self.random.random() < winner.quality:
                winner.successes += 1
                self.successes += 1
                self.fees_cents += round(price * FEE_BPS / 10_000)
        self.agents.do("step")
        self.datacollector.collect(self)


def run(ticks: int) -> dict[str, Any]:
    started = time.perf_counter()
    model = ReferenceMarket()
    for _ in range(ticks):
        model.step()
    wall_s = time.perf_counter() - started
    return {
        "ticks": ticks,
        "auctions": model.auctions,
        "success_rate": round(model.successes / max(model.auctions, 1), 4),
        "wall_s": round(wall_s, 3),
        "auctions_per_s": round(model.auctions / wall_s),
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 50)))
