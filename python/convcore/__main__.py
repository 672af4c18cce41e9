"""Command line: ``python -m convcore demo [OUTDIR]``."""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m convcore demo [OUTDIR]   (default OUTDIR: ./convcore-demo)")
        return 0 if argv else 2
    if argv[0] == "demo":
        from .demo import run
        run(argv[1] if len(argv) > 1 else "convcore-demo")
        return 0
    print(f"unknown command {argv[0]!r}; try: python -m convcore demo", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
