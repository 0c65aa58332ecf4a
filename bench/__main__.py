"""`make bench`: run every benchmark module in bench/ and print its ratios."""

from __future__ import annotations

import importlib
import sys

# One entry per benchmark module; each defines main() -> None and prints its own figures.
BENCHMARKS: tuple[str, ...] = (
    "bench.bench_scoring",
    "bench.reputation",
    "bench.bench_certs",
    "bench.bench_api",
    "bench.bench_market",
    "bench.bench_sim",
    "bench.bench_pg",
    "bench.bench_subscriptions",
)


def main(argv: list[str]) -> int:
    selected = [name for name in BENCHMARKS if not argv or name.rsplit(".", 1)[-1] in argv]
    for name in selected:
        print(f"== {name}", flush=True)
        # each benchmark runs with its own defaults: the selection arguments are this runner's
        # (bench_sim reads sys.argv for its sizes and crashed on "bench_sim")
        sys.argv = sys.argv[:1]
        importlib.import_module(name).main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
