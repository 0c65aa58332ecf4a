"""Persistence every domain shares: the store protocols (base.py), the identity and registry
stores on SQLite and PostgreSQL, the migrations of both backends, the market's tables and the
transaction drivers (market_db.py), the per-process and Redis rate limits and key cache."""
