"""``python -m liquidssm.bench NAME [options]``: same as ``liquidssm bench NAME``."""

import sys

from liquidssm.bench import BENCHMARKS, run

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in {"-h", "--help"}:
        print(f"usage: python -m liquidssm.bench {{{','.join(sorted(BENCHMARKS))}}} [options]")
        raise SystemExit(0 if len(sys.argv) >= 2 else 2)
    raise SystemExit(run(sys.argv[1], sys.argv[2:]))
