"""Fallback load generator (when wrk is absent): httpx async, run as its own process.

Usage: python -m bench.httpx_load URL DURATION_S CONNECTIONS HEADERS_JSON [BODY]
Prints [requests_per_s, p99_ms] as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def run(
    url: str, duration_s: float, connections: int, headers: dict[str, str], body: bytes | None
) -> tuple[float, float]:
    latencies_s: list[float] = []
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits) as client:
        end_s = time.perf_counter() + duration_s

        async def worker() -> None:
            while time.perf_counter() < end_s:
                started_s = time.perf_counter()
                if body is None:
                    response = await client.get(url)
                else:
                    json_type = {"content-type": "application/json"}
                    response = await client.post(url, content=body, headers=json_type)
                assert response.status_code < 300, response.text
                latencies_s.append(time.perf_counter() - started_s)

        await asyncio.gather(*(worker() for _ in range(connections)))
    latencies_s.sort()
    return len(latencies_s) / duration_s, latencies_s[int(len(latencies_s) * 0.99)] * 1000


def main(argv: list[str]) -> None:
    url, duration_s, connections, headers = argv[0], float(argv[1]), int(argv[2]), argv[3]
    body = argv[4].encode() if len(argv) > 4 else None
    result = asyncio.run(run(url, duration_s, connections, json.loads(headers), body))
    print(json.dumps(list(result)))


if __name__ == "__main__":
    main(sys.argv[1:])
