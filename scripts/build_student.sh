#!/usr/bin/env bash
# Rebuild the distilled student shipped in the package, in one command:
#
#   scripts/build_student.sh [WORK_DIR]        (default WORK_DIR: ../distill-run)
#
# 1. labels: scripts/distill_labels.sh WORK_DIR (collect with the best-of-N local teacher ->
#    AIQA filter -> export to WORK_DIR/sft; resumable; SKIP_LABELS=1 reuses WORK_DIR/sft);
# 2. train: storefront distill train WORK_DIR/sft into storefront_sdk/models/
#    (smollm2-storefront-lora.gguf + manifest.json: data hash, arguments, seed, versions,
#    losses, wall time, device);
# 3. evaluate (SKIP_EVAL=1 skips): storefront eval, the student (local) beside the base model
#    (local-base) and the history baseline, on the held-out shoppers (Instacart users 31-40
#    and the demo users), reports in WORK_DIR/eval-*.
#
# Training settings (environment): EPOCHS (2), MAX_STEPS (unset: EPOCHS decides), LR (5e-4),
# RANK (8), ALPHA (16), BATCH (8), SEED (0). On 2 CPU cores under load a step of 8 examples
# takes ~1 min; see docs/distillation-training.md for the measured times.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-../distill-run}
PY=${PYTHON:-python}
SF="$PY -m storefront_sdk.cli"
INSTACART=${INSTACART:-../shared/data/instacart}

if [ "${SKIP_LABELS:-0}" != 1 ]; then
    PYTHON="$PY" bash scripts/distill_labels.sh "$OUT"
fi

STEPS=()
if [ -n "${MAX_STEPS:-}" ]; then STEPS=(--max-steps "$MAX_STEPS"); fi
nice -n 5 $SF distill train "$OUT/sft" -o storefront_sdk/models \
    --adapter-name smollm2-storefront-lora.gguf \
    --epochs "${EPOCHS:-2}" "${STEPS[@]}" --lr "${LR:-5e-4}" --rank "${RANK:-8}" \
    --alpha "${ALPHA:-16}" --batch-size "${BATCH:-8}" --seed "${SEED:-0}" \
    | tee "$OUT/train.txt"

if [ "${SKIP_EVAL:-0}" != 1 ]; then
    nice -n 5 $SF eval --instacart-dir "$INSTACART" --user-ids 31-40 \
        --configs history,local-base,local --out "$OUT/eval-31-40" | tee "$OUT/eval-31-40.txt"
    nice -n 5 $SF eval --demo --configs history,local-base,local \
        --out "$OUT/eval-demo" | tee "$OUT/eval-demo.txt"
fi
echo "student: storefront_sdk/models/smollm2-storefront-lora.gguf (+ manifest.json)"
