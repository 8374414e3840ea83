"""The parser and runner behind every command line of the project.

An area (synth, training, export, evaluation, the services, the local stack) is a module with
`register(subparsers)`: it adds its parsers and sets `func(args) -> int`. `register` imports
nothing heavy; each command imports torch, onnxruntime, FAISS or confluent_kafka inside its
`func`, so `--help` and a service's start stay fast. Both `clippings` (clippings/cli.py) and
`python -m clippings.services` build on this module, so neither imports the other.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from types import ModuleType

from clippings.errors import ClippingsError


def build_parser(areas: Iterable[ModuleType], description: str, prog: str = "clippings") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for area in areas:
        area.register(sub)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse, set up logging, run the command; a ClippingsError, or an OSError on a path, is one line
    on stderr and exit code 2."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # says which SIMD build it picked, at INFO
    try:
        return int(args.func(args) or 0)
    except ClippingsError as exc:
        print(f"clippings {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # A path the user gave that cannot be made or read (a folder inside a file, no
        # permission, a full disk) is bad input, not a bug; -v keeps the traceback for one.
        if exc.filename is None or args.verbose:
            raise
        print(f"clippings {args.command}: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
