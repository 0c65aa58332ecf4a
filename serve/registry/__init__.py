"""aex-provider-registry: providers, category subscriptions, A2A agent cards and search."""
