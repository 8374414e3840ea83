"""`python -m clippings.services COMMAND`: the streaming commands alone.

The same commands as `clippings up|replay|tail|dlq|embedder|linker|topics`, without importing every
other command of the CLI first (training, evaluation), so a service process starts in a
fraction of the time. The local stack and the tests start their services this way.
"""

from __future__ import annotations

import sys

from clippings.cli import main

if __name__ == "__main__":
    sys.exit(main(modules=("clippings.services.cli",), description="The streaming services of clippings."))
