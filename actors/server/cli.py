"""The ``actors`` command line: ``python -m actors COMMAND ...`` or the ``actors`` console script.

``serve`` runs the chat server and ``demo`` a supervision tree; ``publish``, ``subscribe`` and
``health`` are the framework's operator commands (``actors.cli``). Each command has a
``_configure_<command>`` function that adds its arguments and sets ``handler``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from actors import __version__
from actors.cli import EXIT_INTERRUPTED, add_operator_commands, run_command, run_operator
from actors.server.demo import DemoOptions, run_demo
from actors.server.http import AddressInUseError

if TYPE_CHECKING:
    from actors.server.gateway import DemoLogin, TokenVerifier

MAX_PORT: Final = 65_535
# actors.observability.LOG_FORMATS, written out: importing it here would load prometheus_client
# before any command runs (a test checks that the two agree).
LOG_FORMATS: Final = ("text", "json")


def _seconds(text: str, *, zero: bool) -> float:
    """A finite number of seconds, above 0 (or from 0 if ``zero``), for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (value >= 0 if zero else value > 0) or value == float("inf"):
        what = "0 or a positive number" if zero else "a positive number"
        raise argparse.ArgumentTypeError(f"must be {what} of seconds: {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    return _seconds(text, zero=False)


def _non_negative_seconds(text: str) -> float:
    return _seconds(text, zero=True)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _client_name(text: str) -> str:
    from actors.redis import check_client_name

    try:
        return check_client_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    """``--log-format text|json``, for the commands that configure logging."""
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text: one line per record for people; json: one JSON object per line with "
        "time, level, logger, event, actor, channel and error (default: %(default)s)",
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to {MAX_PORT}: {text!r}")
    return value


DEMO_DESCRIPTION: Final = (
    "Run a small supervision tree: a ticker, a worker that fails at random and is restarted with "
    "exponential backoff, and a one_for_all subtree that exceeds its restart intensity and "
    "escalates to the root. Shows a live view on a terminal and one line per event otherwise. "
    "Stops after --duration seconds or on Ctrl-C, always in order."
)


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=_positive_seconds,
        default=20.0,
        metavar="SECONDS",
        help="stop by itself after this long (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed for the failures and the backoff jitter (default: a fresh one, shown)",
    )
    parser.add_argument(
        "--view",
        choices=["auto", "live", "plain"],
        default="auto",
        help="live: redraw a screen; plain: one line per event; auto: live on a terminal",
    )
    parser.set_defaults(handler=_run_demo)


def _run_demo(arguments: argparse.Namespace) -> int:
    live = arguments.view == "live" or (arguments.view == "auto" and sys.stdout.isatty())
    seed = arguments.seed if arguments.seed is not None else random.randrange(10_000)
    options = DemoOptions(duration=arguments.duration, seed=seed, live=live)
    try:
        code = run_demo(options, sys.stdout)
    except KeyboardInterrupt:
        # Only when Ctrl-C came before the demo could catch it, or came twice.
        print("demo interrupted before it could stop cleanly", file=sys.stderr)
        return EXIT_INTERRUPTED
    if _stdout_is_broken():
        return 1
    return code


def _stdout_is_broken() -> bool:
    """Whether the reader of stdout went away (``actors demo | head``).

    If so, stdout is pointed at the null device, so that the interpreter's own flush at exit
    does not complain about the broken pipe too.
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    else:
        return False
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)
    return True


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="port, from 0 to 65535; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "memory://"),
        metavar="URL",
        help="memory:// for one process, or a redis:// URL shared by several "
        "(default: $REDIS_URL or memory://)",
    )
    parser.add_argument(
        "--client-name",
        type=_client_name,
        default=None,
        metavar="NAME",
        help="the name of this process's Redis connections in CLIENT LIST, instead of the "
        "URL's client_name option (default: that option, else actors:HOST:PID)",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="an origin allowed to open WebSockets, such as https://chat.example.com "
        "(repeatable; default: the server's own)",
    )
    parser.add_argument(
        "--server-name",
        default=None,
        help="this process's name in live updates and presence (default: HOST-PID)",
    )
    parser.add_argument("--presence-ttl", type=_positive_seconds, default=60.0, metavar="SECONDS")
    parser.add_argument(
        "--presence-heartbeat", type=_positive_seconds, default=25.0, metavar="SECONDS"
    )
    parser.add_argument("--presence-sweep", type=_positive_seconds, default=5.0, metavar="SECONDS")
    parser.add_argument(
        "--presence-grace",
        type=_non_negative_seconds,
        default=5.0,
        metavar="SECONDS",
        help="reconnect grace window before a user goes offline (default: %(default)s)",
    )
    add_log_format_argument(parser)
    parser.add_argument(
        "--gc-threshold",
        type=_non_negative_int,
        default=50_000,
        metavar="N",
        help="once up, freeze the startup heap and collect the young generation every N "
        "allocations; 0 leaves Python's collector as it is (default: %(default)s)",
    )
    parser.add_argument(
        "--admin-token",
        default=None,
        metavar="TOKEN",
        help="serve the observer at /admin to whoever sends this token (16+ printable ASCII "
        "characters; default: $ACTORS_ADMIN_TOKEN, else no /admin)",
    )
    _configure_tokens(parser)
    parser.set_defaults(handler=_run_serve)


def _configure_tokens(parser: argparse.ArgumentParser) -> None:
    # The gateway is imported only to serve (as in _run_serve): the defaults are its own,
    # filled in by _token_setup, and the help says them.
    group = parser.add_argument_group("identity (JWTs; see docs/gateway.md)")
    keys = group.add_mutually_exclusive_group()
    keys.add_argument(
        "--secret",
        default=None,
        help="HS256 token secret, 32 bytes or more, the same for every process (default: "
        "$ACTORS_GATEWAY_SECRET; with neither, --demo-login makes up one)",
    )
    keys.add_argument(
        "--token-public-key",
        type=Path,
        default=None,
        metavar="FILE",
        help="the identity provider's PEM public key, for RS256 or ES256 tokens",
    )
    keys.add_argument(
        "--token-jwks",
        type=Path,
        default=None,
        metavar="FILE",
        help="the identity provider's JSON Web Key Set, keys chosen by kid (RS256 or ES256)",
    )
    group.add_argument(
        "--token-algorithm",
        default=None,
        metavar="{HS256,RS256,ES256}",
        help="the one algorithm accepted (default: RS256 with a key file, else HS256)",
    )
    group.add_argument("--token-audience", default=None, metavar="AUD", help="the aud required")
    group.add_argument("--token-issuer", default=None, metavar="ISS", help="the iss required")
    group.add_argument(
        "--token-leeway",
        type=_non_negative_seconds,
        default=None,
        metavar="SECONDS",
        help="clock skew allowed on exp, nbf and iat, at most 300 (default: 10)",
    )
    group.add_argument(
        "--token-rooms-claim",
        default=None,
        metavar="NAME",
        help="the claim listing the rooms a user may join, if a token has it; '' for none "
        "(default: rooms)",
    )
    group.add_argument(
        "--demo-login",
        action="store_true",
        help="serve POST /token, which signs an HS256 token for any name: for trying the "
        "server, never for a real deployment (default: off, /token answers 404)",
    )


def _token_setup(arguments: argparse.Namespace) -> tuple[TokenVerifier, DemoLogin | None]:
    """The verifier and the demo login (if on) that the arguments describe.

    Raises:
        TokenKeyError: A key file or the secret cannot work, or the arguments do not fit.
        ValueError: A rule is out of range (the leeway).
    """
    from actors.server.gateway import (
        ALGORITHMS,
        DEFAULT_LEEWAY,
        DEFAULT_ROOMS_CLAIM,
        DemoLogin,
        KeyRing,
        TokenKeyError,
        TokenRules,
        TokenVerifier,
        random_secret,
        secret_from,
    )

    key_file = arguments.token_public_key or arguments.token_jwks
    algorithm = arguments.token_algorithm or ("RS256" if key_file else "HS256")
    if algorithm not in ALGORITHMS:
        raise TokenKeyError(f"--token-algorithm must be one of {', '.join(ALGORITHMS)}")
    if key_file is not None and algorithm == "HS256":
        raise TokenKeyError("a key file is for RS256 or ES256 tokens: HS256 takes --secret")
    if key_file is None and algorithm != "HS256":
        raise TokenKeyError(f"{algorithm} needs --token-public-key or --token-jwks")
    if arguments.demo_login and algorithm != "HS256":
        raise TokenKeyError("--demo-login signs HS256 tokens: it needs --secret, not a key file")
    if arguments.token_public_key is not None:
        keys = KeyRing.from_public_key_file(arguments.token_public_key, algorithm)
    elif arguments.token_jwks is not None:
        keys = KeyRing.from_jwks_file(arguments.token_jwks, algorithm)
    else:
        secret = secret_from(arguments.secret)
        if secret is None and not arguments.demo_login:
            raise TokenKeyError(
                "no token key: give --secret (or $ACTORS_GATEWAY_SECRET), --token-public-key "
                "or --token-jwks; --demo-login lets anybody sign in, to try the server"
            )
        keys = KeyRing.from_secret(secret or random_secret())
    rules = TokenRules(
        audience=arguments.token_audience,
        issuer=arguments.token_issuer,
        leeway=DEFAULT_LEEWAY if arguments.token_leeway is None else arguments.token_leeway,
        rooms_claim=(
            DEFAULT_ROOMS_CLAIM
            if arguments.token_rooms_claim is None
            else arguments.token_rooms_claim or None
        ),
    )
    verifier = TokenVerifier(keys, rules)
    return verifier, DemoLogin(verifier) if arguments.demo_login else None


def _run_serve(arguments: argparse.Namespace) -> int:
    from actors.observability import configure_logging
    from actors.presence import PresenceSettings
    from actors.redis import with_client_name
    from actors.server.admin import admin_token_from
    from actors.server.gateway import GatewaySettings, run_server

    configure_logging(arguments.log_format)
    url = arguments.redis_url
    if arguments.client_name is not None and not url.startswith("memory:"):
        url = with_client_name(url, arguments.client_name)
    try:
        presence = PresenceSettings(
            ttl=arguments.presence_ttl,
            heartbeat=arguments.presence_heartbeat,
            sweep_interval=arguments.presence_sweep,
            grace=arguments.presence_grace,
        )
        settings = GatewaySettings(
            allowed_origins=tuple(arguments.allowed_origin) if arguments.allowed_origin else None,
            presence=presence,
            **({"server_name": arguments.server_name} if arguments.server_name else {}),
        )
        tokens, demo_login = _token_setup(arguments)
        admin_token = admin_token_from(arguments.admin_token)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def announce(line: str) -> None:
        print(line, flush=True)

    async def serve() -> int:
        try:
            await run_server(
                url=url,
                host=arguments.host,
                port=arguments.port,
                tokens=tokens,
                demo_login=demo_login,
                settings=settings,
                announce=announce,
                gc_threshold=arguments.gc_threshold or None,
                admin_token=admin_token,
            )
        except AddressInUseError as error:
            print(f"error: {error}; pick another port with --port", file=sys.stderr)
            return 1
        return 0

    return run_operator(serve)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="actors", description="Supervised actors on trio: tools, a chat server and a demo."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _configure_demo(
        commands.add_parser(
            "demo",
            help="run a supervision tree that fails on purpose, in a live view",
            description=DEMO_DESCRIPTION,
        )
    )
    add_operator_commands(commands)
    _configure_serve(
        commands.add_parser(
            "serve",
            help="run the chat server: page, WebSocket gateway, /metrics and /health",
        )
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Args:
        argv: The arguments after the program name; default ``sys.argv[1:]``.

    Raises:
        SystemExit: From argparse, for ``--help``, ``--version`` and bad arguments.
    """
    return run_command(build_parser(), argv)
