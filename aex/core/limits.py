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
# A promised or required turnaround longer than a year is a unit mistake, not an SLA (the spec's
# example promises "4h").
turnaround_ms_max: Final = 366 * 24 * 3_600_000
# Rows the columnar scorer handles per block (whole auctions, so a block may run over by up to
# bids_per_work_max): 64k rows keep a block's float64 column slice at 512 KiB, so the dozen
# passes over a block hit cache, not DRAM. Tuned with bench/bench_scoring.py.
scoring_block_rows: Final = 65_536

# Reputation. The spec's consistency term looks at 30 days of daily rates.
reputation_window_days: Final = 30
# Outcomes one provider's reputation is computed over in one call (a driver pages beyond this).
outcomes_per_provider_max: Final = 100_000

# Ledger. Accounts per ledger state and postings per operation.
accounts_max: Final = 10_000_000
postings_per_entry_max: Final = 8

# HTTP. The spec's largest plan payload (Enterprise, 10 MB).
request_body_bytes_max: Final = 10 * 1024 * 1024

# Simulator.
sim_steps_max: Final = 1_000_000
market_log_batch_rows_max: Final = 1_000_000

assert amount_minor_max < 2**53
assert bids_per_work_max <= bids_per_batch_max
assert bids_per_work_max <= scoring_block_rows <= bids_per_batch_max
assert turnaround_ms_max < 2**53
