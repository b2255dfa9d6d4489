"""``python -m modelops.reproduce <model> <version>`` (see ``modelops.reproduce.cli``)."""

import sys

from modelops.reproduce.cli import main

if __name__ == "__main__":
    sys.exit(main())
