"""The ``reference-runtime`` daemon (the image and runtime services come in their own issues)."""

import sys


def main() -> None:
    print("reference-runtime: the CRI services are not built yet", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
