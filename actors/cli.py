"""The framework's operator commands: ``publish``, ``subscribe`` and ``health`` against Redis.

Each command has a ``_configure_<command>`` function that adds its arguments to the command's
parser and sets ``handler``: the function that runs the command and returns its exit code.
``add_operator_commands`` adds them to any command line; the ``actors`` program
(``actors.server.cli``) adds them beside ``serve`` and ``demo``, and ``run_command`` runs
whichever was chosen.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Final

import trio

from actors import ActorsError, __version__

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

EXIT_INTERRUPTED: Final = 130  # what shells report for a process ended by SIGINT


def _configure_publish(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="redis://, rediss:// or unix:// URL")
    parser.add_argument("channel", help="the channel to publish on")
    parser.add_argument("json", help="the JSON document to publish, as it is")
    parser.set_defaults(handler=_run_publish)


def _run_publish(arguments: argparse.Namespace) -> int:
    from actors import _operator

    return run_operator(
        lambda: _operator.publish(arguments.url, arguments.channel, arguments.json, sys.stdout)
    )


def _configure_subscribe(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="redis://, rediss:// or unix:// URL")
    parser.add_argument(
        "name", metavar="CHANNEL_OR_PATTERN", help="a channel, or a glob pattern such as events.*"
    )
    parser.add_argument(
        "--count", type=int, default=None, help="stop after this many messages (default: never)"
    )
    parser.set_defaults(handler=_run_subscribe)


def _run_subscribe(arguments: argparse.Namespace) -> int:
    from actors import _operator

    return run_operator(
        lambda: _operator.subscribe(
            arguments.url, arguments.name, sys.stdout, limit=arguments.count
        )
    )


def _configure_health(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="redis://, rediss:// or unix:// URL")
    parser.set_defaults(handler=_run_health)


def _run_health(arguments: argparse.Namespace) -> int:
    from actors import _operator

    return run_operator(lambda: _operator.health(arguments.url, sys.stdout))


def add_operator_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``publish``, ``subscribe`` and ``health`` to a command line's subcommands."""
    _configure_publish(commands.add_parser("publish", help="publish a JSON document on a channel"))
    _configure_subscribe(
        commands.add_parser(
            "subscribe", help="print what arrives on a channel or pattern, and every gap"
        )
    )
    _configure_health(
        commands.add_parser("health", help="check a Redis connection; exit code 0 if up")
    )


def run_operator(command: Callable[[], Awaitable[int]]) -> int:
    """Run ``command`` under trio; an error or Ctrl-C becomes an exit code and one line."""
    try:
        return trio.run(command)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (ActorsError, trio.TooSlowError, OSError) as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The parser of the operator commands alone."""
    parser = argparse.ArgumentParser(
        prog="actors", description="Operator commands for Redis Pub/Sub through actors."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_operator_commands(parser.add_subparsers(title="commands", metavar="COMMAND", required=True))
    return parser


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` with ``parser`` and run the chosen command's handler; its exit code.

    Raises:
        SystemExit: From argparse, for ``--help``, ``--version`` and bad arguments.
    """
    arguments = parser.parse_args(argv)
    try:
        code: int = arguments.handler(arguments)
    except KeyboardInterrupt:
        # Ctrl-C while the command still imports what it needs, before it can stop in order.
        return EXIT_INTERRUPTED
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the operator commands; returns the exit code (``python -m actors.cli``)."""
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
