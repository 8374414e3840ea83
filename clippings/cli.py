"""The `clippings` command: one parser, one subcommand group per area.

Each area's `cli.py` exposes a light `register(subparsers)` (clippings/commands.py says the
convention); adding a command means adding it to its area's `cli.py`, and a new area to AREAS.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from clippings import commands
from clippings.data.shift import cli as shift_cli
from clippings.data.synth import cli as synth_cli
from clippings.evaluation import cli as evaluation_cli
from clippings.export import cli as export_cli
from clippings.review import cli as review_cli
from clippings.services import cli as services_cli
from clippings.services.local import cli as local_cli
from clippings.training import cli as training_cli

DESCRIPTION = "Streaming multimodal deduplication and record linkage for digitised newspapers."
# In the order `clippings --help` lists them.
AREAS: tuple[ModuleType, ...] = (synth_cli, shift_cli, training_cli, export_cli, evaluation_cli, local_cli, services_cli,
                                   review_cli)


def build_parser(areas: Sequence[ModuleType] = AREAS) -> argparse.ArgumentParser:
    return commands.build_parser(areas, DESCRIPTION)


def main(argv: Sequence[str] | None = None) -> int:
    return commands.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
