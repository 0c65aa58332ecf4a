"""The market: aex-work-publisher, aex-bid-gateway, aex-bid-evaluator, aex-contract-engine and aex-
trust-broker (work, bids, evaluation, contracts, outcomes, reputation), and the market-log
export."""
