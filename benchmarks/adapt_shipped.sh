#!/usr/bin/env bash
# Adapt the simulation-trained region models to real sections, without labels, into the
# shipped weights (topdown/seg/weights/<preset>.safetensors + .json + .eval.json).
# Exact commands; run from the repository root after benchmarks/train_shipped.sh has
# written the simulation-only models to topdown/seg/weights/sim/.
#
#   bash benchmarks/adapt_shipped.sh                   # olfactory_bulb and cortex_laminar
#   bash benchmarks/adapt_shipped.sh olfactory_bulb
#   REAL=/data/real_dev SIMS=sims bash benchmarks/adapt_shipped.sh
#
# Per preset: `topdown adapt` (AdaBN + confident pseudo-label self-training, 200 steps,
# seed 0) of weights/sim/<preset> on the IMAGES ONLY of the real_dev set named below, each
# at the pixel size in its meta.json; the expert labels beside them are never read (they
# score the result: benchmarks/real_regions.py, and benchmarks/adapt_transfer.py for
# sections the adaptation never saw). Then the held-out simulated evaluation as in
# train_shipped.sh, on $SIMS/<preset>_test when it exists.
set -euo pipefail

REAL=${REAL:-../shared/data/real_dev}
SIMS=${SIMS:-sims}
WEIGHTS=${WEIGHTS:-topdown/seg/weights}
SEED=${SEED:-0}
declare -A SET=( [olfactory_bulb]=mob [cortex_laminar]=dlpfc )
PRESETS=("$@")
if [ ${#PRESETS[@]} -eq 0 ]; then PRESETS=(olfactory_bulb cortex_laminar); fi

for preset in "${PRESETS[@]}"; do
  set_name=${SET[$preset]:?"no real set for preset $preset"}
  images=()
  pixel_sizes=()
  for dir in "$REAL/$set_name"/*/; do
    images+=("$(ls "$dir"image.* | head -n 1)")
    pixel_sizes+=("$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["pixel_size_um"])' "${dir}meta.json")")
  done
  topdown adapt "$WEIGHTS/sim/$preset.safetensors" "${images[@]}" --pixel-size "${pixel_sizes[@]}" \
      --method pseudo_label --seed "$SEED" --device cpu --name "$preset" --out "$WEIGHTS/$preset.safetensors"
  if [ -d "$SIMS/${preset}_test" ]; then
    python benchmarks/write_eval.py "$WEIGHTS/$preset" "$SIMS/${preset}_test"
  fi
done
