"""The SDK runs against the same real server as tests/serve (one per backend per session)."""

from tests.serve.conftest import backend, client, server  # noqa: F401 - fixtures
