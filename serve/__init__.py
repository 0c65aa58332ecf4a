"""The live exchange: a Litestar app (drivers only) over the pure core in `aex/core`."""

# Asserts guard the core's invariants in production too (STYLE.md 7): refuse to run without them.
if not __debug__:  # pragma: no cover
    raise SystemExit("serve: refusing to start with python -O (asserts guard money invariants)")
