"""The `aex` command line: one sub-command per module in `aex/commands/`.

Each command module defines `register(subparsers)`, which adds its parser and sets
`func=run`; heavy imports happen inside `run`, so `aex --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# One entry per sub-command module; a new command adds its module here.
COMMAND_MODULES: tuple[str, ...] = (
    "aex.commands.serve",
    "aex.commands.verify",
    "aex.commands.cert",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aex", description="AEX, the Agent Exchange")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
