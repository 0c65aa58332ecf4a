"""`aex`'s one error rule: every user error is one line on stderr and exit 2, never a
traceback; `AEX_DEBUG=1` shows it. Each case runs the real command in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def aex(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aex.cli", *args],
        cwd=ROOT,
        env={**os.environ, "AEX_DEBUG": "", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line_user_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_version_prints_the_package_version() -> None:
    result = aex("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("aex ")


def test_a_usage_mistake_is_one_line(tmp_path: Path) -> None:
    assert_one_line_user_error(aex("verify", str(tmp_path / "c.json")), "--ca", "--help")


def test_an_unknown_command_is_one_line() -> None:
    assert_one_line_user_error(aex("no-such-command"), "invalid choice")


def test_a_missing_certificate_file_is_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.json")
    assert_one_line_user_error(aex("verify", missing, "--ca", missing), "missing.json")


def test_serve_with_a_bad_weights_file_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"}')
    data = tmp_path / "data"
    result = aex("serve", "--weights", str(bad), "--data-dir", str(data), "--port", "9")
    assert_one_line_user_error(result, "bad.json")
    assert not data.exists()


def test_serve_with_an_unknown_preset_lists_the_presets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = aex("serve", "--weights", "fastest", "--data-dir", str(data), "--port", "9")
    assert_one_line_user_error(result, "fastest", "balanced", "lowest_price", "best_quality")
    assert not data.exists()


def test_serve_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        data = tmp_path / "data"
        result = aex("serve", "--port", port, "--data-dir", str(data))
    assert_one_line_user_error(result, f"127.0.0.1:{port}", "in use")
    assert not data.exists()


def test_serve_into_an_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = aex("serve", "--data-dir", str(a_file / "data"), "--port", "9")
    assert_one_line_user_error(result, "not a directory")


def test_tune_with_an_unknown_scenario_lists_the_known_ones() -> None:
    assert_one_line_user_error(aex("tune", "no-such-scenario"), "default", "attacks")


def test_sim_with_a_malformed_scenario_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("ticks = [\n")
    assert_one_line_user_error(aex("sim", str(bad), "--out", str(tmp_path / "r.duckdb")), "TOML")


def test_backtest_of_a_missing_log_is_one_line(tmp_path: Path) -> None:
    assert_one_line_user_error(aex("backtest", str(tmp_path / "none.duckdb")), "none.duckdb")


def test_backtest_of_a_log_without_all_bids_is_one_line(tmp_path: Path) -> None:
    log = tmp_path / "winners.duckdb"
    made = aex(
        "sim", "default", "--ticks", "2", "--log-bids", "winners", "--no-progress",
        "--out", str(log),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert_one_line_user_error(aex("backtest", str(log)), "all")


def test_aex_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = aex("backtest", str(tmp_path / "none.duckdb"), env={"AEX_DEBUG": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_a_command_whose_extra_is_not_installed_names_the_extra() -> None:
    from aex.commands._errors import missing_module

    hint = missing_module(ModuleNotFoundError("No module named 'duckdb'", name="duckdb"))
    assert hint is not None
    assert "aex[workbench]" in hint
    assert missing_module(ModuleNotFoundError("x", name="somethingelse")) is None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def aex_in(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aex.cli", *args],
        cwd=cwd,
        env={**os.environ, "AEX_DEBUG": "", "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_option_of_every_command_has_help_text() -> None:
    import argparse

    from aex.cli import build_parser, walk_parsers

    silent = [
        f"{each.prog} {action.option_strings or action.dest}"
        for each in walk_parsers(build_parser())
        for action in each._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert not silent, silent


def test_serve_reads_a_dot_env_file_and_refuses_its_bad_value_writing_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text("AEX_REQUEST_TIMEOUT_S=0\n")
    data = tmp_path / "data"
    result = aex_in(tmp_path, "serve", "--data-dir", str(data), "--port", str(free_port()))
    assert_one_line_user_error(result, "AEX_REQUEST_TIMEOUT_S")
    assert not data.exists()  # no operator.key, jwt.secret or webhook.key left behind


def test_the_real_environment_wins_over_the_dot_env_file(tmp_path: Path) -> None:
    from aex.commands.serve import load_env_file

    env_file = tmp_path / "settings.env"
    env_file.write_text("AEX_WINDOW_POLL_MS=0\nAEX_CORS_ORIGINS=https://a.example\n")
    environ = {"AEX_WINDOW_POLL_MS": "200"}
    taken = load_env_file(env_file, environ)
    assert environ == {"AEX_WINDOW_POLL_MS": "200", "AEX_CORS_ORIGINS": "https://a.example"}
    assert taken == ["AEX_CORS_ORIGINS"]


def test_a_bad_setting_in_the_environment_leaves_no_secret_file_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = str(free_port())
    result = aex_in(
        tmp_path, "serve", "--data-dir", str(data), "--port", port, env={"AEX_WINDOW_POLL_MS": "x"}
    )
    assert_one_line_user_error(result, "AEX_WINDOW_POLL_MS")
    assert not data.exists()


def test_a_missing_env_file_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = aex_in(tmp_path, "serve", "--env-file", "nope.env", "--data-dir", str(data))
    assert_one_line_user_error(result, "--env-file", "nope.env")
    assert not data.exists()


def test_cert_commands_never_create_a_ca_in_an_empty_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for command in (
        ("cert", "export", "--format", "x509-ca"),
        ("cert", "ca"),
        ("cert", "crl"),
        ("cert", "show", "cert_x"),
        ("cert", "revoke", "cert_x"),
    ):
        result = aex_in(tmp_path, *command, "--data-dir", str(data))
        assert_one_line_user_error(result, "no CA in", "aex cert rotate")
        assert not data.exists(), command


def test_completion_scripts_parse_in_their_shell() -> None:
    import shutil

    script = aex("completion", "bash")
    assert script.returncode == 0, script.stderr
    assert "serve" in script.stdout
    assert "--data-dir" in script.stdout
    checked = subprocess.run(
        ["bash", "-n"], input=script.stdout, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
    zsh = shutil.which("zsh")
    zsh_script = aex("completion", "zsh")
    assert zsh_script.returncode == 0
    assert "#compdef aex" in zsh_script.stdout
    if zsh is not None:
        checked = subprocess.run(
            [zsh, "-n"], input=zsh_script.stdout, capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, checked.stderr
