"""aex-gateway: the request pipeline in the spec's order (edge layers, rate limits, authentication,
idempotency), each route's declared caller, problem+json, the OpenAPI contract."""
