"""Command line.

    python -m convcore demo [OUTDIR | --outdir OUTDIR] [--epochs N] [--device cpu|gpu|auto]
                                                    train the MNIST convnet, draw what it learned
    python -m convcore filters [OUTDIR]             the filtering story (smoothing, edges, matching)
"""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if any(a in ("-h", "--help") for a in rest):
        print(__doc__.strip())
        return 0
    epochs = 10
    if "--epochs" in rest:
        i = rest.index("--epochs")
        try:
            epochs = int(rest[i + 1])
        except (IndexError, ValueError):
            print("--epochs needs an integer", file=sys.stderr)
            return 2
        rest = rest[:i] + rest[i + 2:]
    device = None
    if "--device" in rest:
        i = rest.index("--device")
        if i + 1 >= len(rest) or rest[i + 1] not in ("cpu", "gpu", "auto"):
            print("--device needs one of: cpu, gpu, auto", file=sys.stderr)
            return 2
        device = rest[i + 1]
        rest = rest[:i] + rest[i + 2:]
    if "--outdir" in rest:
        i = rest.index("--outdir")
        if i + 1 >= len(rest):
            print("--outdir needs a folder", file=sys.stderr)
            return 2
        rest = rest[:i] + rest[i + 1:]
    unknown = [a for a in rest if a.startswith("-")]
    if unknown or len(rest) > 1:
        print(f"unexpected arguments {rest}; usage: python -m convcore demo|filters [OUTDIR] [--epochs N] "
              "[--device cpu|gpu|auto]", file=sys.stderr)
        return 2
    outdir = rest[0] if rest else "convcore-demo"
    if cmd == "demo":
        from .mnist_demo import run
        run(outdir, epochs=epochs, device=device)
        return 0
    if cmd == "filters":
        from .demo import run
        run(outdir)
        return 0
    print(f"unknown command {cmd!r}; try: python -m convcore demo | filters", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
