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
# Rows the compiled scoring kernel (aex/core/_scoring_kernel.py) handles per block, whole
# auctions: its half-dozen loops over a block then read the columns from L2 (8 k rows are about
# 1.3 MiB of input and output), not DRAM. 2 k, 8 k and 32 k rows measured the same within the
# noise of the shared machine (bench/bench_scoring.py).
scoring_kernel_block_rows: Final = 8_192

# Reputation. The spec's consistency term looks at 30 days of daily rates.
reputation_window_days: Final = 30
# Outcomes one provider's reputation is computed over in one call (a driver pages beyond this).
outcomes_per_provider_max: Final = 100_000
# Providers in one columnar reputation call: the consistency term keeps a (providers × 30 days)
# table, 30 M cells (~240 MB of float64) at this bound; the simulator's markets are far smaller.
reputation_providers_per_call_max: Final = 1_000_000
# Outcomes in one columnar reputation call: the scoring batch's order of magnitude (~30 bytes a
# row plus a few float64 temporaries: a few GB at the bound).
reputation_outcomes_per_call_max: Final = 20_000_000

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

# Notification streams (server-sent events) one provider key may hold open in one process: an
# agent needs one, a few more cover a restart racing the old connection's teardown (noticed at
# the next heartbeat) and a second instance during a deploy. Issue 11 saw one key hold 2,000.
notification_streams_per_key_max: Final = 8

# Simulator.
sim_steps_max: Final = 1_000_000
market_log_batch_rows_max: Final = 1_000_000

# Market (aex/core/market.py, durations.py, criteria.py, events.py).
# The spec: "Bid window opens (5 seconds to 5 minutes, configurable)".
bid_window_seconds_min: Final = 5
bid_window_seconds_max: Final = 300
# A title is a headline, not a description: 200 characters is two tweets' worth.
work_title_chars_max: Final = 200
# Category and capability tokens ("TECHNOLOGY", "code.review"): short identifiers, not prose.
category_chars_max: Final = 32
capability_chars_max: Final = 64
# Identifiers a client sends back to us (work_id, provider_id, event ids): a UUID is 36 chars,
# a prefixed one ("work_" + UUID) 41; 64 leaves room without admitting essays.
id_chars_max: Final = 64
# Free-form JSON (work requirements, bid sample work, completion results, event payloads):
# bounded in bytes (compact JSON encoding), in nodes visited and in nesting depth, so the
# iterative walk that measures it is itself bounded.
requirements_bytes_max: Final = 16 * 1024
sample_work_bytes_max: Final = 64 * 1024
results_bytes_max: Final = 1024 * 1024
# bids.evaluated carries every bid's components: 1,000 bids x ~400 bytes fits in 1 MiB.
event_payload_bytes_max: Final = 1024 * 1024
json_nodes_max: Final = 100_000
# A work's `work.submitted` event names its recipients; a work matching more subscribers than
# this is announced in several events, each naming a slice (aex/core/notifications.py
# recipient_parts), so that no event outgrows event_payload_bytes_max (10,000 ids of at most
# id_chars_max characters, quoted and comma-separated, are under 0.7 MiB).
work_recipients_per_event_max: Final = 10_000
assert work_recipients_per_event_max * (id_chars_max + 3) < event_payload_bytes_max * 0.7
json_depth_max: Final = 16
# A whole request body: the deepest honest one is a work or bid body (1 level) around a
# free-form value (json_depth_max); a certificate document nests 5. Twice the free-form bound
# leaves room, and it stays far below the ~1,000 levels at which the JSON decoder (msgspec, on
# Python's recursion limit) raises RecursionError: deeper bodies are refused as 400 before any
# route reads them, instead of a 500 with a traceback (issue 11, item 3).
request_json_depth_max: Final = 2 * json_depth_max
# A progress report (`{"percent": 50}`) is a status line, not a deliverable: the requirements'
# bound. Results, which are the deliverable, have results_bytes_max.
progress_bytes_max: Final = 16 * 1024
# A dispute's reason is the consumer's explanation to the operator: a few paragraphs.
dispute_reason_chars_max: Final = 2_000
# Success criteria per work: a checklist, not a test suite; metrics per completion report.
criteria_per_work_max: Final = 32
metrics_per_report_max: Final = 256
metric_name_chars_max: Final = 64
# Durations ("1h30m"): a literal longer than 32 characters is not a duration a person wrote;
# a promised turnaround beyond a year is not a marketplace gig (and far inside int64 ms).
duration_literal_chars_max: Final = 32
duration_ms_max: Final = 365 * 24 * 3600 * 1000

assert amount_minor_max < 2**53
assert bids_per_work_max <= bids_per_batch_max
assert 0 < bid_window_seconds_min < bid_window_seconds_max
assert requirements_bytes_max <= request_body_bytes_max
assert json_depth_max + 2 <= request_json_depth_max < 500
assert progress_bytes_max <= request_body_bytes_max
assert sample_work_bytes_max <= request_body_bytes_max
assert results_bytes_max <= request_body_bytes_max
assert criteria_per_work_max <= metrics_per_report_max
assert duration_ms_max < 2**53
assert outcomes_per_provider_max <= reputation_outcomes_per_call_max
assert amount_minor_max <= balance_minor_max < 2**63

# Certificates (aex/core/certs.py).
# Claims on one certificate: the spec's Professional plan has 5 capability certificates per agent;
# 32 claims on one certificate is far past any honest capability list and keeps it under ~8 KB.
claims_per_certificate_max: Final = 32
# Free-text fields (category, capability, scope, agent name, provider id, ids, notes). 64 is
# X.520's ub-common-name and ub-organization-name, so every name also fits the X.509 export.
cert_name_chars_max: Final = 64
cert_scope_chars_max: Final = 256
# CA/Browser Forum's ceiling for a TLS certificate is 398 days; we never sign for longer.
cert_validity_days_max: Final = 398
# Nodes (objects, arrays, scalars) walked when canonicalising one document: a certificate has
# ~40 plus ~6 per claim, so 10,000 covers the largest certificate and a 1,600-entry CRL page.
canonical_json_nodes_max: Final = 10_000
# Entries on one revocation list: one million revoked certificates is ~100 MB of JSON, past
# which the CRL must be partitioned (RFC 5280 issuing distribution points), not grown.
crl_entries_max: Final = 1_000_000
# W3C Bitstring Status List v1.0 §6.1: "a minimum of 131,072 entries" (16 KB) per list, for
# group privacy; index i lives in list i // status_list_entries (docs/certificates.md).
status_list_entries: Final = 131_072
# An IDENTITY challenge response: the key authorisation is 43 + 1 + 43 bytes; ACME servers
# read a few KB at most. More is refused without reading it (docs/certificates.md).
challenge_response_bytes_max: Final = 1_024
# A challenge is valid this long after it is issued (Let's Encrypt keeps authorisations
# pending for 7 days; an agent here answers in seconds, so one hour is plenty).
challenge_lifetime_ms: Final = 3_600_000
# CA keys published at once: one active key plus a year of monthly rotations and spares.
ca_keys_published_max: Final = 16

assert cert_name_chars_max <= cert_scope_chars_max
assert claims_per_certificate_max * 8 < canonical_json_nodes_max
assert bids_per_work_max <= scoring_block_rows <= bids_per_batch_max
assert turnaround_ms_max < 2**53

# A2A agent cards. A card describes one agent; 64 skills with 16 tags each is several times the
# largest published sample cards, and bounds the search index at 64 × 17 terms per provider.
agent_card_skills_max: Final = 64
agent_card_tags_per_skill_max: Final = 16
# A name, description, url or version: a paragraph, not a document.
agent_card_text_chars_max: Final = 1_024
# A skill id or tag is a search term: a word or two.
agent_card_term_chars_max: Final = 64
# The card document as stored (the whole JSON text).
agent_card_bytes_max: Final = 64 * 1024
# Results of one provider search page.
provider_search_results_max: Final = 100

# AP2 mandates (issue 15 item 2, docs/payments.md "AP2 mandates"). A mandate's categories: a
# consumer names the few market categories its agent may buy in; 32 is every category the
# market has with room to spare.
mandate_categories_max: Final = 32
# A signed intent mandate as sent (compact JWS): a few hundred bytes; 8 KB leaves room for a
# long description and refuses documents before they are parsed.
mandate_token_chars_max: Final = 8_192
# A mandate's free-text description (AP2's natural_language_description): a sentence or two.
mandate_description_chars_max: Final = 512
# User keys a tenant registers for signing mandates: one per device with spares.
mandate_keys_per_tenant_max: Final = 16
# The token bank's vouchers: redemptions one multi-use voucher allows (a campaign's size), and
# the expired wallets one sweep call moves to breakage (one transaction each).
voucher_redemptions_max: Final = 1_000_000
credit_expiries_per_sweep_max: Final = 500
