#!/usr/bin/env bash
# Train the shipped segmentation weights (topdown/seg/weights/<preset>.safetensors + .json)
# from `topdown simulate` output. Exact commands; run from the repository root.
#
#   bash benchmarks/train_shipped.sh                 # all presets
#   bash benchmarks/train_shipped.sh spinal_cord     # one preset
#   N=400 EPOCHS=30 DEVICE=cuda bash benchmarks/train_shipped.sh
#
# Each preset: N simulated frames (SIZE px at the preset's pixel size unless PX_<preset> is
# set), a held-out test simulation with another seed (N_TEST frames), training with seed 0,
# then held-out evaluation written to topdown/seg/weights/<preset>.eval.json (kept out of
# package data; the training-validation metrics are inside <preset>.json).
set -euo pipefail

N=${N:-400}
N_TEST=${N_TEST:-40}
SIZE=${SIZE:-128}
EPOCHS=${EPOCHS:-30}
DEVICE=${DEVICE:-auto}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-1}
WIDTHS=${WIDTHS:-16,32,64,128,192}
SIMS=${SIMS:-sims}
WEIGHTS=topdown/seg/weights
PRESETS=("$@")
if [ ${#PRESETS[@]} -eq 0 ]; then
  PRESETS=(mouse_brain_coronal spinal_cord sciatic_nerve olfactory_bulb cortex_laminar)
fi

# pixel sizes for SIZE=128 frames: the preset's field of view at half the pixel count
# (the presets' own imaging blocks are 256 px); mouse_brain_coronal keeps 20 um/px x 256.
declare -A PX=( [mouse_brain_coronal]=40 [spinal_cord]=16 [sciatic_nerve]=12 [olfactory_bulb]=16 [cortex_laminar]=16 )

for preset in "${PRESETS[@]}"; do
  px=${PX[$preset]}
  topdown simulate --preset "$preset" --n "$N" --size "$SIZE" --pixel-size "$px" --seed 1 \
      --workers "$WORKERS" --out "$SIMS/$preset"
  topdown simulate --preset "$preset" --n "$N_TEST" --size "$SIZE" --pixel-size "$px" --seed 2 \
      --workers "$WORKERS" --out "$SIMS/${preset}_test"
  topdown train --data "$SIMS/$preset" --out "$WEIGHTS/$preset.safetensors" --epochs "$EPOCHS" \
      --widths "$WIDTHS" --device "$DEVICE" --threads "$THREADS" --seed 0 --name "$preset"
  rm -f "$WEIGHTS/$preset.safetensors.state.safetensors"   # resume state is not shipped
  python - "$preset" "$SIMS/${preset}_test" <<'PY'
import json, sys
import topdown as td
name, test = sys.argv[1], sys.argv[2]
res = td.seg.evaluate(td.seg.load(name), test)
res.pop("confusion")
open(f"topdown/seg/weights/{name}.eval.json", "w").write(json.dumps(res, indent=2) + "\n")
print(name, "held-out mIoU", round(res["miou"], 3), "pixel accuracy", round(res["pixel_accuracy"], 3))
PY
done
