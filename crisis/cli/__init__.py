"""The `crisis` command: each module of this package adds its subcommands.

Only argparse is loaded to build the parser (`crisis --help` answers at once); a command imports what it
needs when it runs. A user's mistake (a missing or non-UTF-8 file, an unreachable server, a closed
pipe) ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from crisis.cli import (
    audit,
    exercise,
    keys,
    officer,
    orgs,
    output,
    servers,
    tail,
    tools,
    transparency,
    webhooks,
)
from crisis.cli.errors import CliError, user_message

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader went away


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="crisis", description="crisis-bus: real-time coordination for online crisis response."
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (servers, keys, orgs, officer, tail, exercise, tools, webhooks, audit, transparency):
        module.register(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if argv is None:
        output.own_process()
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (`| head`) has all it wanted: stop quietly, and keep the interpreter's final
        # flush from failing on the same closed pipe.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        message = user_message(exc)
        if message is None:
            raise
        print(f"crisis: error: {message}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, CliError) else 1
    return code


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a file descriptor (a test's buffer): nothing will flush to a pipe


if __name__ == "__main__":
    sys.exit(main())
