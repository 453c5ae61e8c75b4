"""``python -m liquidssm.bench NAME [options]``: same as ``liquidssm bench NAME`` (errors, ``--help``)."""

import sys

from liquidssm.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
