"""Sub-commands of the `aex` CLI (see aex/cli.py)."""
