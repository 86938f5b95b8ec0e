"""Replace the shipped hyperprior weights with a candidate export, keeping the
old ones so that their streams still decode.

    python tools/ship_weights.py CANDIDATE.lmw [--compact CANDIDATE_COMPACT.pt]

1. moves python/lmcodec/models/hyperprior.lmw to
   models/hyperprior-<first 16 hex digits of its model id>.lmw (the decoder
   finds it there by the id in a stream's header);
2. copies the candidate in its place (and the compact resume state to
   training/checkpoints/hyperprior.pt);
3. reinstalls the package (pip install --no-deps --no-build-isolation .) and
   regenerates the golden vectors (tools/make_golden.py keeps the old
   hyperprior vector as an archived one, which must keep decoding).

Then regenerate the fuzz corpus (python fuzz/make_corpus.py), the Kodak
results and the README figures, and run the tests.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "python" / "lmcodec" / "models"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("candidate")
    ap.add_argument("--compact", help="compact resume state of the candidate (training/checkpoints/hyperprior.pt)")
    args = ap.parse_args(argv)
    from lmcodec import _core
    from lmcodec._api import ARCHIVE_ID_DIGITS

    current = MODELS / "hyperprior.lmw"
    cand = Path(args.candidate)
    old_id = str(_core.Model(str(current)).info()["model_id"])
    new_id = str(_core.Model(str(cand)).info()["model_id"])
    if old_id == new_id:
        print("the candidate is the shipped model; nothing to do")
        return 1
    dest = MODELS / f"hyperprior-{old_id[:ARCHIVE_ID_DIGITS]}.lmw"  # where _api.archive_path looks
    shutil.move(str(current), dest)
    shutil.copy(cand, current)
    print(f"archived {old_id} as {dest.relative_to(ROOT)}; shipped {new_id}")
    if args.compact:
        shutil.copy(args.compact, ROOT / "training" / "checkpoints" / "hyperprior.pt")
        print("compact resume state -> training/checkpoints/hyperprior.pt")
    # the golden vectors come from the installed package: install the new weights first
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(ROOT)],
                   check=True)
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_golden.py")], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
