"""The `clippings` command: one parser, one subcommand per module.

Each module named here exposes `register(subparsers)`, adds its parser and sets
`func(args) -> int`. Modules import their heavy dependencies (torch, onnxruntime,
confluent_kafka) inside `func`, so `clippings --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from clippings.errors import ClippingsError

DESCRIPTION = "Streaming multimodal deduplication and record linkage for digitised newspapers."
COMMAND_MODULES = (
    "clippings.data.synth.generate",
    "clippings.training.cli",
    "clippings.export.cli",
    "clippings.evaluation.cli",
    "clippings.services.cli",
)


def build_parser(modules: tuple[str, ...] = COMMAND_MODULES, description: str = DESCRIPTION) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clippings", description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None, modules: tuple[str, ...] = COMMAND_MODULES,
         description: str = DESCRIPTION) -> int:
    args = build_parser(modules, description).parse_args(argv)
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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
