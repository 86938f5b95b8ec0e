"""``python -m lmcodec``: the command line (lmcodec/cli.py)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
