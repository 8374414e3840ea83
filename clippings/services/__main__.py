"""`python -m clippings.services COMMAND`: the streaming commands alone.

The same commands as `clippings up|replay|tail|embedder|linker|topics`, without importing every
other command of the CLI first (training, evaluation), so a service process starts in a
fraction of the time. The local stack and the tests start their services this way.
"""

from __future__ import annotations

import argparse
import logging
import sys

from clippings.errors import ClippingsError
from clippings.services.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clippings", description="The streaming services of clippings.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except ClippingsError as exc:
        print(f"clippings {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
