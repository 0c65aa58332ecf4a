"""Dockerfile: hadolint finds nothing, and the policies hold: multi-stage, a slim pinned base,
a non-root user, a health check on /health, `aex serve` on the data volume, and a build context
(.dockerignore) without secrets, data or the virtual environment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.tools import DOCKERFILE, ROOT, run, tool


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            found.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return found


def stages(found: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in found:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def build_args(found: list[Instruction]) -> dict[str, str]:
    pairs = (i.arguments.partition("=") for i in found if i.keyword == "ARG")
    return {name: value for name, _, value in pairs}


DOCKERFILE_INSTRUCTIONS = instructions(DOCKERFILE.read_text())


def test_hadolint_finds_nothing() -> None:
    done = run([tool("hadolint"), "--no-color", DOCKERFILE], cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python app.py\n")
    done = run([tool("hadolint"), "--no-color", bad])
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # latest
    assert "DL3025" in done.stdout  # CMD not in JSON form


def test_two_stages_on_a_slim_pinned_base() -> None:
    built = stages(DOCKERFILE_INSTRUCTIONS)
    assert [s[0].arguments.split()[-1] for s in built] == ["build", "runtime"]
    base = build_args(DOCKERFILE_INSTRUCTIONS)["PYTHON_IMAGE"]
    name, _, tag = base.partition(":")
    assert name == "python"
    assert "slim" in tag
    assert tag != "latest"
    # requires-python in pyproject.toml admits the base's Python
    assert re.match(r"3\.1[123]-", tag), tag
    for stage in built:
        image = stage[0].arguments.split()[0]
        assert image == "${PYTHON_IMAGE}" or (":" in image and not image.endswith(":latest"))
    # the runtime stage takes only the built environment from the build stage
    runtime = built[-1]
    copies = [i.arguments for i in runtime if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/aex /opt/aex"]


def test_the_uv_version_is_the_makefiles() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (pinned,) = re.findall(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert build_args(DOCKERFILE_INSTRUCTIONS)["UV_VERSION"] == pinned


def test_the_image_installs_from_the_lock_without_the_dev_group() -> None:
    (export,) = [
        i.arguments
        for i in DOCKERFILE_INSTRUCTIONS
        if i.keyword == "RUN" and "uv export" in i.arguments
    ]
    assert "--frozen" in export
    assert "--no-dev" in export
    assert "--require-hashes" in export
    assert "--no-deps ." in " ".join(i.arguments for i in DOCKERFILE_INSTRUCTIONS)


def test_the_runtime_runs_as_an_unprivileged_user() -> None:
    runtime = stages(DOCKERFILE_INSTRUCTIONS)[-1]
    users = [i.arguments for i in runtime if i.keyword == "USER"]
    assert users, "no USER: the container would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in {"0", "root"}
    assert group not in {"0", "root"}
    assert user.isdigit(), "a numeric uid, so runAsNonRoot can check it"
    # nothing runs as root after the switch
    after = runtime[[i.keyword for i in runtime].index("USER") :]
    assert not [i for i in after if i.keyword == "RUN"]


def test_the_health_check_and_the_entrypoint() -> None:
    runtime = stages(DOCKERFILE_INSTRUCTIONS)[-1]
    (health,) = [i.arguments for i in runtime if i.keyword == "HEALTHCHECK"]
    assert "http://127.0.0.1:8080/health" in health
    assert "CMD [" in health
    (entrypoint,) = [i.arguments for i in runtime if i.keyword == "ENTRYPOINT"]
    assert entrypoint == '["aex", "serve"]'
    (command,) = [i.arguments for i in runtime if i.keyword == "CMD"]
    assert command == '["--host", "0.0.0.0", "--port", "8080", "--data-dir", "/var/lib/aex"]'
    (volume,) = [i.arguments for i in runtime if i.keyword == "VOLUME"]
    assert volume == '["/var/lib/aex"]'
    assert [i.arguments for i in runtime if i.keyword == "EXPOSE"] == ["8080"]


def test_the_build_context_leaves_out_secrets_data_and_the_venv() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".cache", "data", "runs", "**/*.key", "**/*.pem", ".env"} <= ignored
    assert {"**/*.sqlite3*", "**/*.secret"} <= ignored
    # and keeps what the build stage copies
    needed = {
        part
        for i in DOCKERFILE_INSTRUCTIONS
        if i.keyword == "COPY" and not i.arguments.startswith("--from")
        for part in i.arguments.split()[:-1]
    }
    assert needed == {"pyproject.toml", "uv.lock", "README.md", "aex", "serve"}
    assert not needed & ignored
