"""aex-token-bank: prepaid marketplace credits (vouchers)."""
