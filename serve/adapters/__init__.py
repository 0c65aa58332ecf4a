"""Adapters to external engines (NATS JetStream)."""
