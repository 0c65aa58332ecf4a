"""Events and notifications: the outbox hub, SSE, signed webhooks, the webhook address policy
(SSRF), the NATS JetStream relay."""
