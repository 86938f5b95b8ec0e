"""``python -m lmcodec.bench ...`` (the same as ``lmcodec bench ...``)."""

import sys

from .cli import main_bench

sys.exit(main_bench(sys.argv[1:]))
