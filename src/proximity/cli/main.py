"""The ``proximity`` command: one subcommand module per job, errors as one line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from proximity import __version__
from proximity.errors import ProximityError

__all__ = ["build_parser", "main"]

# The subcommand modules, in help order, and which one registers each command: a run imports only its
# command's module (`proximity match` loads neither the simulator nor the BLE stack); help, a typo or no
# command registers them all.
_MODULES = (
    "keys",
    "ids",
    "match",
    "scan",
    "replay",
    "log",
    "evaluate",
    "node",
    "simulate",
    "epidemic",
    "serve",
    "upload",
)
COMMANDS = {
    "keys": "keys",
    "ids": "ids",
    "match": "match",
    "scan": "scan",
    "replay": "replay",
    "log": "log",
    "evaluate": "evaluate",
    "node": "node",
    "simulate": "simulate",
    "epidemic": "epidemic",
    "serve": "serve",
    "serve-export": "serve",
    "publish": "upload",
}

# Commands with no linear algebra worth a second thread: numpy's OpenBLAS starts them without its
# thread pool (starting it costs ~30 ms of CPU, a third of `import numpy`), unless the user said.
_ONE_BLAS_THREAD = frozenset({"match", "ids", "keys", "log"})
_BLAS_THREADS = "OPENBLAS_NUM_THREADS"


def _command_of(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the command line, only with the subcommand it runs (every one without)."""
    parser = argparse.ArgumentParser(
        prog="proximity",
        description="Privacy-preserving BLE proximity contact tracing (GAEN and Bluezone).",
    )
    parser.add_argument("--version", action="version", version=f"proximity-tracing {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="on an error, show the full traceback (for a bug report)"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = _command_of(argv or ())
    for name in (COMMANDS[command],) if command in COMMANDS else _MODULES:
        importlib.import_module(f"proximity.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every failure is one line on stderr and a non-zero exit: the library's own
    errors say what to fix; anything else is a bug, shown whole with ``--debug``. A closed pipe
    (``| head``) ends quietly; Ctrl-C exits 130 after the command kept what it had finished."""
    argv = sys.argv[1:] if argv is None else argv
    if _command_of(argv) in _ONE_BLAS_THREAD and "numpy" not in sys.modules:  # read when numpy loads
        os.environ.setdefault(_BLAS_THREADS, "1")
    args = build_parser(argv).parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
    except ProximityError as error:
        if debug:
            import traceback  # only for --debug: a run never loads it

            traceback.print_exc()
        print(f"proximity: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        _silence_stdout()  # the reader (e.g. `| head`) went away: stop quietly, as Unix tools do
        return 0
    except KeyboardInterrupt:
        print("proximity: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug, or a failure nobody foresaw: one line, the rest on request
        if debug:
            import traceback  # only for --debug: a run never loads it

            traceback.print_exc()
        detail = str(error).splitlines()[0][:300] if str(error) else ""
        print(
            f"proximity: error: unexpected {type(error).__name__}" + (f": {detail}" if detail else "")
            + ("" if debug else " (run with --debug for the traceback, and please report it)"),
            file=sys.stderr,
        )  # fmt: skip
        return 2
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout was replaced by something without a descriptor
        pass


if __name__ == "__main__":
    sys.exit(main())
