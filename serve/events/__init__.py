"""Event delivery drivers (the outbox relay to NATS JetStream)."""
