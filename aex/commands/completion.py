"""`aex completion SHELL`: a static completion script for bash, zsh or tcsh (shtab).

aex completion bash > ~/.local/share/bash-completion/completions/aex
aex completion zsh > "${fpath[1]}/_aex"
"""

from __future__ import annotations

import argparse
from typing import Any

SHELLS = ("bash", "zsh", "tcsh")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, tcsh)",
        description=__doc__,
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell the script is for")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shtab

    from aex.cli import build_parser

    print(shtab.complete(build_parser(), shell=args.shell), end="")
    return 0
