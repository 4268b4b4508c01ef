"""``python -m slidenet.cli``: the same as the ``slidenet`` command."""

import sys

from slidenet.cli import main

if __name__ == "__main__":
    sys.exit(main())
