"""The ``gdchaos`` command line.

Each sub-command lives in its own module of this package (:mod:`.run`, :mod:`.analyze`, :mod:`.cubic`,
:mod:`.plot`, :mod:`.data`, :mod:`.merge`,
:mod:`.upgrade`, :mod:`.findlr`), which exposes ``register(subparsers)``; that function adds its parser and
sets ``handler`` (a callable taking the parsed namespace and returning an exit code). :mod:`.progress`
and :mod:`.table` are what a run and ``analyze`` print. Modules import their heavy dependencies inside
the handler so that ``gdchaos --help`` stays fast.
"""
from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys

from gdchaos import __version__
from gdchaos.errors import GdchaosError

COMMAND_MODULES: tuple[str, ...] = (
    "gdchaos.cli.cubic",
    "gdchaos.cli.run",
    "gdchaos.cli.findlr",
    "gdchaos.cli.analyze",
    "gdchaos.cli.merge",
    "gdchaos.cli.upgrade",
    "gdchaos.cli.data",
    "gdchaos.cli.plot",
)


def number(text: str) -> float:
    """argparse type of a number; a bad one reads ``argument --FLAG: must be a number; got 'x'``."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None


def integer(text: str) -> int:
    """argparse type of an integer; a bad one reads ``argument --FLAG: must be an integer; got 'x'``."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None


class Parser(argparse.ArgumentParser):
    """argparse with errors for people: one line on stderr, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command."""
    parser = Parser(
        prog="gdchaos",
        description="Measure chaos (network Lyapunov exponents) in full-batch gradient-descent training.",
    )
    parser.add_argument("--version", action="version", version=f"gdchaos {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gdchaos`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except GdchaosError as exc:
        print(f"gdchaos: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("gdchaos: interrupted", file=sys.stderr)
        return 130


def console() -> None:
    """The ``gdchaos`` console script and ``python -m gdchaos``: :func:`main`, then :func:`exit_quickly`."""
    exit_quickly(main())


def exit_quickly(code: int) -> None:
    """End the process with ``code`` once the output is flushed and the exit handlers have run
    (``atexit``: logging, h5py, Dask), skipping only the interpreter's teardown of every module,
    which takes about half a second once Numba has compiled or loaded a kernel (docs/performance.md)."""
    if "numba" not in sys.modules:
        raise SystemExit(code)
    _flush()
    atexit._run_exitfuncs()
    _flush()  # what the exit handlers printed
    os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
