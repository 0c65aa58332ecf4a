"""The `aex` command line: one sub-command per module in `aex/commands/`.

Each command module defines `register(subparsers)`, which adds its parser and sets
`func=run`; heavy imports happen inside `run`, so `aex --help` stays fast. Errors follow one
rule (`aex/commands/_errors.py`): a user's mistake is one line on stderr and exit 2, never a
traceback (`AEX_DEBUG=1` shows it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import aex
from aex.commands._errors import (
    EXIT_INTERNAL_ERROR,
    EXIT_USER_ERROR,
    missing_module,
    one_line,
    user_error_types,
)

# One entry per sub-command module; a new command adds its module here.
COMMAND_MODULES: tuple[str, ...] = (
    "aex.commands.serve",
    "aex.commands.verify",
    "aex.commands.cert",
    "aex.commands.sim",
    "aex.commands.tune",
    "aex.commands.incentives",
    "aex.commands.study",
    "aex.commands.sensitivity",
    "aex.commands.compare",
    "aex.commands.backtest",
    "aex.commands.export",
    "aex.commands.dashboard",
    "aex.commands.completion",
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every command's help: each option with its default (when it has one worth saying), the
    description and epilog as written (the `serve` environment table keeps its layout)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


def walk_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and every sub-command's parser below it, depth first."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += walk_parsers(child)
    return found


class _Parser(argparse.ArgumentParser):
    """argparse with the one error rule: a usage mistake is one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aex",
        description="AEX, the Agent Exchange",
    )
    parser.add_argument("--version", action="version", version=f"aex {aex.__version__}")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="run `aex COMMAND --help`"
    )
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for each in walk_parsers(parser):  # one help layout for every command
        each.formatter_class = HelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if os.environ.get("AEX_DEBUG") == "1":
            raise
        prog = f"aex {args.command}"
        hint = missing_module(error)
        if hint is not None:
            print(f"{prog}: error: {hint}", file=sys.stderr)
            return EXIT_USER_ERROR
        if isinstance(error, user_error_types()):
            print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(
            f"{prog}: internal error: {type(error).__name__}: {one_line(error)}"
            " (AEX_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
