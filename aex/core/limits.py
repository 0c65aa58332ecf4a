# Rule: every collection and loop in the core has a named upper bound, defined here and only here.
#
# Drivers check a limit before they call the core; the core asserts it. Each limit carries its
# precedent or a back-of-the-envelope reason (after TigerStyle: "put a limit on everything").
from __future__ import annotations

from typing import Final

# Money. 10^14 minor units is 1 trillion USD: far beyond any single posting, exactly
# representable in float64 (< 2^53) so columnar code may carry it; times 10,000 bps it still
# fits int64, and 90,000 of them still sum inside int64.
amount_minor_max: Final = 10**14
# ISO 4217 has no currency with more than 4 decimal places (CLF, UYW).
currency_exponent_max: Final = 4
# A money literal longer than this is not money: 16 digits of amount, a point, 4 decimals, sign.
amount_literal_chars_max: Final = 32

# Auctions. The spec's bid window is at most 5 minutes; 1,000 bids is ~3 bids/s for the whole
# window, well past any market the simulator has produced.
bids_per_work_max: Final = 1_000
# One columnar scoring call: 10 million bids is the simulator's benchmark batch; more is chunked.
bids_per_batch_max: Final = 20_000_000

# Reputation. The spec's consistency term looks at 30 days of daily rates.
reputation_window_days: Final = 30
# Outcomes one provider's reputation is computed over in one call (a driver pages beyond this).
outcomes_per_provider_max: Final = 100_000

# Ledger. Accounts per ledger state and postings per operation.
accounts_max: Final = 10_000_000
postings_per_entry_max: Final = 8
# One wallet bucket: 10^15 minor units (10 trillion USD) is ten maximal postings; it fits a
# PostgreSQL BIGINT with four orders of magnitude to spare for the external account's sum.
balance_minor_max: Final = 10**15
# Operation, wallet and hold ids are driver-chosen keys ("tenant:<uuid>", "contract:<uuid>"):
# 128 characters holds a prefix and two UUIDs.
ledger_id_chars_max: Final = 128

# HTTP. The spec's largest plan payload (Enterprise, 10 MB).
request_body_bytes_max: Final = 10 * 1024 * 1024

# Simulator.
sim_steps_max: Final = 1_000_000
market_log_batch_rows_max: Final = 1_000_000

assert amount_minor_max < 2**53
assert bids_per_work_max <= bids_per_batch_max
assert amount_minor_max <= balance_minor_max < 2**63
