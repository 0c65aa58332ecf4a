"""What the deploy/ checks run: the repository's files and the tools that check them.

kubectl (its built-in kustomize), hadolint and the Kubernetes schemas come from PyPI wheels in
the dev group (pyproject.toml), so they sit in the virtual environment's bin/; promtool comes
from Debian's prometheus package, unpacked into .cache/prometheus by `make deploy-tools` (a
prerequisite of `make test` and `make deploy-check`). A missing tool fails the test with the
command that installs it: these checks never skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "staging", "production")
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "aex.json"
OPERATIONS = ROOT / "docs" / "operations.md"
UV = ROOT / ".cache" / "uv-bootstrap" / "bin" / "uv"
PROMTOOL = ROOT / ".cache" / "prometheus" / "usr" / "bin" / "promtool"
# The Kubernetes release the rendered objects are validated against (kubernetes-validate's
# bundled schemas; strict: unknown fields are errors too).
KUBERNETES_VERSION = "1.33.0"


def tool(name: str) -> Path:
    """A tool of the virtual environment (never a same-named one elsewhere on PATH)."""
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{name} missing from {path.parent}: run `make install`"
    return path


def promtool() -> Path:
    if PROMTOOL.is_file():
        return PROMTOOL
    found = shutil.which("promtool")
    assert found, "promtool missing: run `make deploy-tools`"
    return Path(found)


def run(command: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize deploy/k8s/overlays/<overlay>`: the objects a cluster would get."""
    done = run([tool("kubectl"), "kustomize", K8S / "overlays" / overlay])
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc is not None)


def of_kind(objects: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def source_text() -> str:
    """Every Python source of the exchange and its CLI: where a setting must be read."""
    return "\n".join(p.read_text() for d in ("serve", "aex") for p in (ROOT / d).rglob("*.py"))


# How serve/ and aex/ read a variable: env.get("AEX_X"), os.environ["AEX_X"], or a helper
# of serve/settings.py called as _int(env, "AEX_X", ...).
_READ = re.compile(r"""(?:env(?:iron)?(?:\.get\(\s*|\[)|\(\s*env,\s*)["'](AEX_[A-Z0-9_]+)["']""")


@cache
def settings_read() -> frozenset[str]:
    """The AEX_* variables the code reads from the environment."""
    return frozenset(_READ.findall(source_text()))


def environment() -> dict[str, str]:
    return dict(os.environ)
