#!/bin/bash
# One training phase of the built-in model on a CUDA machine, resumed from
# training/runs/maze/checkpoint.pt; run from the repository root. It is the script phases 5 and 6
# ran with (training/README.md), on a lent machine with PyTorch but no diffusers and no network:
#
#   .whl/          the wheels of diffusers 0.42.1, importlib_metadata and lazy-importer
#                  (pip download --no-deps --only-binary=:all: --python-version 3.12 ...)
#   .bin/stepscope.xz   `target/release/stepscope`, stripped and xz-compressed (the generator)
#
# Settings come from the environment: DEVICE (cuda), MINUTES (wall budget of the training loop),
# ANNEAL (its last minutes, a cosine down to MIN_LR), BATCH, LR, WARMUP, WORKERS (generator
# threads), TRAIN_TIMEOUT (seconds before the trainer is asked to checkpoint and stop), OUT (where
# the log and the run, as a tar split into 15 MB parts, are written). Phase 5, for example:
#
#   DEVICE=cuda MINUTES=7.5 ANNEAL=3 BATCH=512 LR=1.5e-3 WORKERS=12 OUT=/tmp/out \
#     bash training/gpu_phase.sh
set -o pipefail
PY=${PY:-python3}
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
$PY -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.bin/stepscope.xz'), open('/tmp/stepscope','wb'))" \
  && chmod +x /tmp/stepscope || exit 4
/tmp/stepscope generate --task maze --size 5 --count 4 --output /tmp/probe.safetensors || exit 5
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
nproc
rm -rf /tmp/run && mkdir -p /tmp/run && cp training/runs/maze/checkpoint.pt training/runs/maze/loss.csv /tmp/run/ || exit 6
timeout -s TERM "${TRAIN_TIMEOUT:-520}" $PY training/train_torch.py --out /tmp/run --resume --stepscope /tmp/stepscope \
  --steps 10000000 --device "$DEVICE" --bf16 --batch-size "$BATCH" --lr "$LR" --warmup "${WARMUP:-300}" \
  --min-lr "${MIN_LR:-2e-5}" --max-minutes "$MINUTES" --anneal-minutes "$ANNEAL" --chunk 4096 --prefetch 2 \
  --workers "$WORKERS" --checkpoint-minutes 100 --threads 4 --task-weights maze=6 2>&1 | tee "$OUT/train.log"
rc=$?
(cd /tmp/run && tar cf - checkpoint.pt loss.csv model) | split -b 15M - "$OUT/run.tar."
ls -la "$OUT"
exit $rc
