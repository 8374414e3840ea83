"""`python -m clippings.services COMMAND`: the streaming commands alone.

The same commands as `clippings up|replay|tail|dlq|topics|embedder|linker`, without importing
the other areas of the CLI (training, evaluation), so a service process starts in a fraction
of the time. The local stack and the tests start their services this way.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from clippings import commands
from clippings.services import cli
from clippings.services.local import cli as local_cli

DESCRIPTION = "The streaming services of clippings."


def main(argv: Sequence[str] | None = None) -> int:
    return commands.run(commands.build_parser((local_cli, cli), DESCRIPTION), argv)


if __name__ == "__main__":
    sys.exit(main())
