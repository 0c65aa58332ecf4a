"""aex-settlement: wallets, deposits, withdrawals, the double-entry ledger drivers (SQLite and
PostgreSQL)."""
