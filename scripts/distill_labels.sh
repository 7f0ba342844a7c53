#!/usr/bin/env bash
# The distillation labels run: collect (best-of-N local teacher) -> AIQA filter -> export.
#
#   scripts/distill_labels.sh [OUT_DIR]        (default OUT_DIR: ../distill-run)
#
# Environment: INSTACART (default ../shared/data/instacart), USERS (1-30), SYNTHETIC (250),
# SEED (0), N (4), TEMPERATURE (0.8), MIN_ON_THEME (0.4), SKIP_COLLECT=1 to filter/export an existing
# checkpoint (collect is resumable: re-running it continues where it stopped).
# Writes OUT_DIR/collect.jsonl, labels.jsonl, and OUT_DIR/sft (AIQA-filtered) and
# OUT_DIR/sft-unfiltered (every label, for the ablation), each written to a temporary
# folder first and renamed into place, with a README.txt of the commands and counts.
set -euo pipefail
OUT=${1:-../distill-run}
INSTACART=${INSTACART:-../shared/data/instacart}
USERS=${USERS:-1-30}
SYNTHETIC=${SYNTHETIC:-250}
SEED=${SEED:-0}
N=${N:-4}
TEMPERATURE=${TEMPERATURE:-0.8}
MIN_ON_THEME=${MIN_ON_THEME:-0.4}
PY=${PYTHON:-python}
SF="$PY -m storefront_sdk.cli"
mkdir -p "$OUT"

COLLECT="$SF distill collect -o $OUT/collect.jsonl --instacart-dir $INSTACART --users $USERS \
--synthetic $SYNTHETIC --seed $SEED --teacher local-best-of --n $N --temperature $TEMPERATURE \
--sample-seed 0 --scorer judge --judge relevance --cache-dir $OUT/cache"
FILTER="$SF distill filter $OUT/collect.jsonl -o $OUT/labels.jsonl --use-judge --min-on-theme $MIN_ON_THEME"
if [ "${SKIP_COLLECT:-0}" != 1 ]; then
    $COLLECT
fi
$FILTER | tee "$OUT/filter.txt"

export_dir() {  # export_dir NAME [extra export flags]: temp folder, README, then rename
    local name=$1; shift
    local tmp="$OUT/.$name.tmp"
    rm -rf "$tmp"
    local cmd="$SF distill export $OUT/labels.jsonl -o $tmp --seed 0 --validation-fraction 0.2 $*"
    $cmd | tee "$OUT/export-$name.txt"
    {
        echo "Distillation labels for storefront_sdk ($name), written $(date -u +%FT%TZ)."
        echo "Chat-format JSONL (OpenAI fine-tuning format): train.jsonl, validation.jsonl;"
        echo "export.json has the counts and the shoppers of each split (split by shopper)."
        echo "Held out, never here: Instacart users 31-40 and the demo users."
        echo
        echo "Commands (from the repository root):"
        echo "  $COLLECT"
        echo "  $FILTER"
        echo "  ${cmd/$tmp/$OUT/$name}"
        echo
        echo "Filter (AIQA) output:"
        sed 's/^/  /' "$OUT/filter.txt"
        echo "Export output:"
        sed 's/^/  /' "$OUT/export-$name.txt"
        echo "Lines: $(wc -l < "$tmp/train.jsonl") train, $(wc -l < "$tmp/validation.jsonl") validation"
    } > "$tmp/README.txt"
    rm -rf "$OUT/$name.old"
    if [ -e "$OUT/$name" ]; then mv "$OUT/$name" "$OUT/$name.old"; fi
    mv "$tmp" "$OUT/$name"
    rm -rf "$OUT/$name.old"
}
export_dir sft-unfiltered --unfiltered
export_dir sft
echo "wrote $OUT/sft and $OUT/sft-unfiltered"
