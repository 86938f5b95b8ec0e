#!/usr/bin/env bash
# One training run of the hyperprior on a lent GPU machine (DEVELOPERS.md,
# the device tool), where ../shared is out of reach and a drawn task has
# ~15 device-minutes in all. Prepare here, once:
#
#   python -m training.shard            # shard/: ~40 MiB of training crops (git-ignored)
#
# then run there, in one call (the machine's start counts too):
#
#   run(command="bash tools/gpu_train.sh 8", carry=["shard"], timeout_s=600)
#
# It resumes from the committed compact state (training/checkpoints/), trains
# MINUTES on the shard with CUDA, and leaves in $OUT: hyperprior.pt (raw
# weights, the next compact resume state), hyperprior_ema.pt (the EMA
# weights, what gets exported), train.log, log.csv, val.jsonl. Back here:
#
#   python -m training.export --ckpt <files_at>/hyperprior_ema.pt --out /tmp/cand.lmw
#   (measure it against the shipped weights on held-out crops; if better,
#    ship it and copy hyperprior.pt to training/checkpoints/)
#
# The export runs here because it needs the lmcodec extension (the coder's
# CDF function), which is built for this machine's Python.
set -euo pipefail
MINUTES=${1:-8}
: "${OUT:?run this through the device tool (OUT is its output folder)}"
[ -d shard ] || { echo "no shard/ folder: build it with python -m training.shard and carry it" >&2; exit 2; }
export PYTHONUNBUFFERED=1 LMCODEC_TRAIN_DATA="$PWD/shard"
CACHE=${LMCODEC_GPU_TRAIN_CACHE:-/tmp/lmcodec-train}
PY=python3
# LMCODEC_GPU_TRAIN_DRY=1: a dry run of this script on a CPU (here), e.g. with MINUTES=0.2
if [ "${LMCODEC_GPU_TRAIN_DRY:-0}" != 1 ]; then
  $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
fi
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader 2>/dev/null || true
$PY -m training.train --resume --cache "$CACHE" --minutes "$MINUTES" --batch 16 --patch 256 \
    --lr 2e-4 --min-lr 2e-5 --warmup 200 --decay-frac 0.3 --val-every 2000 --val-count 24 --no-progress \
    2>&1 | tee "$OUT/train.log"
$PY - "$CACHE/state.pt" "$OUT" <<'EOF'
import sys
from pathlib import Path

import torch

from training.train import save_compact

st = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
out = Path(sys.argv[2])
save_compact(st, out / "hyperprior.pt")
save_compact({**st, "model": st["ema"]}, out / "hyperprior_ema.pt")
print(f"[gpu_train] step {st['step']}, {st['hours']:.2f} h; compact states in {out}")
EOF
cp "$CACHE/log.csv" "$CACHE/val.jsonl" "$OUT/" 2>/dev/null || true
