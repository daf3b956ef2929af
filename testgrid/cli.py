"""The ``testgrid`` command (publishing comes in its own issue)."""

import sys


def main() -> None:
    print("testgrid: publishing is not built yet", file=sys.stderr)
    sys.exit(1)
