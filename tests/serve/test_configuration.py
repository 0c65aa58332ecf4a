"""The one table of environment variables (serve/configuration.py) is what the code reads,
and docs/configuration.md, `.env.example` and `aex serve --help` are rendered from it."""

from __future__ import annotations

import subprocess
import sys

from serve.configuration import ENVIRONMENT, INTERNAL, env_example, markdown
from tests.deploy.tools import ROOT, settings_read
from tools.render_configuration import DOC, ENV_EXAMPLE

TABLE = {variable.name for variable in ENVIRONMENT}


def test_every_variable_the_code_reads_is_in_the_table() -> None:
    missing = settings_read() - INTERNAL - TABLE
    assert not missing, f"add to serve/configuration.py ENVIRONMENT: {sorted(missing)}"


def test_every_variable_in_the_table_is_read_by_the_code() -> None:
    # AEX_DEBUG is read by the CLI as os.environ.get("AEX_DEBUG") too, so it is found.
    unread = TABLE - settings_read()
    assert not unread, f"documented but never read: {sorted(unread)}"


def test_the_configuration_doc_and_env_example_are_current() -> None:
    hint = "run `python -m tools.render_configuration`"
    assert DOC.read_text() == markdown(), hint
    assert ENV_EXAMPLE.read_text() == env_example(), hint


def test_env_example_holds_no_secret_value() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for variable in (v for v in ENVIRONMENT if v.secret):
        assignments = [line for line in lines if line.startswith(f"# {variable.name}=")]
        assert assignments == [f"# {variable.name}=<a secret of your own; never commit it>"]
    assert all(line == "" or line.startswith("#") for line in lines)  # nothing is set


def test_serve_help_lists_every_variable_with_its_default() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "aex.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    ).stdout
    for variable in ENVIRONMENT:
        assert f"  {variable.name}  (default: " in shown, variable.name
    assert "--env-file PATH" in shown
