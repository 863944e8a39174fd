"""Command line: ``botunet <command> ...``; the only place that reads argv or exits."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from botunet import __version__
from botunet.errors import BotunetError

logger = logging.getLogger("botunet")

# Subcommands, each a module in botunet.cli.commands with add_parser() and run().
COMMANDS = ("run", "sessions", "dataset", "models", "train", "evaluate", "detect", "export", "sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="botunet",
        description="Find botnet sessions in packet captures from their first bytes.",
    )
    parser.add_argument("--version", action="version", version=f"botunet {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv: tracebacks)"
    )
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less output, no progress")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"botunet.cli.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"botunet.cli.commands.{name}":
                continue
            raise
        module.add_parser(subparsers)
    return parser


def configure_logging(verbose: int, quiet: int) -> None:
    level = logging.INFO - 10 * verbose + 10 * quiet
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger("botunet")
    root.handlers[:] = [handler]
    root.setLevel(max(logging.DEBUG, min(level, logging.CRITICAL)))
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    configure_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except BotunetError as err:
        if args.verbose >= 2:
            logger.exception("failed")
        print(f"error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader of stdout went away (`botunet ... | head`): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as err:
        # A path the user gave cannot be written or read (a file where a folder should
        # be, no permission, a full disk): one line naming it, as for any bad input.
        if args.verbose >= 2:
            logger.exception("failed")
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def entrypoint() -> None:
    sys.exit(main())
