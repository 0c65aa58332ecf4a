"""aex-identity: tenants, API keys and tokens, who a request's principal is."""
