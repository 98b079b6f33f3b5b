#!/usr/bin/env bash
# Train the shipped segmentation weights (topdown/seg/weights/<preset>.safetensors + .json)
# from `topdown simulate` output. Exact commands; run from the repository root.
#
#   bash benchmarks/train_shipped.sh                 # all presets
#   bash benchmarks/train_shipped.sh spinal_cord     # one preset
#   N=400 EPOCHS=30 DEVICE=cuda bash benchmarks/train_shipped.sh
#   N=2000 EPOCHS=18 FINISH_EPOCHS=3 WORKERS=2 MODALITY=dapi bash benchmarks/train_shipped.sh mouse_brain_coronal   # -> mouse_brain_coronal_dapi, step 1
#   DAPI_INIT=<step 1 weights> N=4000 EPOCHS=6 LR=1e-3 FINISH_EPOCHS=2 WORKERS=2 MODALITY=dapi bash benchmarks/train_shipped.sh mouse_brain_coronal   # step 2
#   DAPI_INIT=<step 2 weights> SIM_SEED=4 N=4000 EPOCHS=6 LR=1e-3 FINISH_EPOCHS=2 WORKERS=2 MODALITY=dapi bash benchmarks/train_shipped.sh mouse_brain_coronal   # step 3: the shipped model
#   SIZE=128 PIXEL_SIZE=40 CROP=128 WIDTHS=16,32,64,128,192 bash benchmarks/train_shipped.sh mouse_brain_coronal   # the 40 um/px recipe of sessions 4-11
#   ORIENTATION=free bash benchmarks/train_shipped.sh spinal_cord   # override the preset's orientation
#   N=3000 EPOCHS=40 FINISH_EPOCHS=16 bash benchmarks/train_shipped.sh olfactory_bulb   # + a 16-epoch finish
#
# Each preset: N simulated frames (SIZE px at the pixel size below unless SIZE / PIXEL_SIZE
# are set; CROP px training crops, see CROPS below), a held-out test simulation with another
# seed (N_TEST frames), training with seed 0 (upright or free orientation, see ORIENT below),
# then held-out evaluation written to $WEIGHTS/<preset>.eval.json (the training-validation metrics are inside <preset>.json).
# olfactory_bulb and cortex_laminar go to $WEIGHTS/sim/ (see ADAPTED below); then run
# benchmarks/adapt_shipped.sh for the shipped, real-adapted models.
set -euo pipefail

N=${N:-400}
N_TEST=${N_TEST:-200}   # held-out frames: 40 frames' mIoU wandered by up to 0.02 from 200's
SIZE=${SIZE:-}
EPOCHS=${EPOCHS:-30}
LR=${LR:-2e-3}   # AdamW learning rate of the main run (cosine schedule)
DEVICE=${DEVICE:-auto}
PRECISION=${PRECISION:-auto}   # auto: bf16 autocast where the CPU/GPU has it natively, else fp32
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-1}
WIDTHS=${WIDTHS:-}   # U-Net channels per level (default: NET below)
MODALITY=${MODALITY:-he}
PIXEL_SIZE=${PIXEL_SIZE:-}
CROP=${CROP:-}
SIMS=${SIMS:-sims}
SIM_SEED=${SIM_SEED:-1}   # seed of the training simulation (2 and 3 are the held-out tests)
if [ "$SIM_SEED" = 2 ] || [ "$SIM_SEED" = 3 ]; then
  echo "SIM_SEED=$SIM_SEED: seeds 2 and 3 are the held-out test simulations; train on another seed" >&2; exit 2
fi
# optional finish: FINISH_EPOCHS more epochs warm-started (`topdown train --init`) from the
# trained weights, on whole frames (FINISH_CROP, default the frame size: more context per
# crop), without class balancing (the balanced run over-predicts thin classes) at FINISH_LR
FINISH_EPOCHS=${FINISH_EPOCHS:-0}
FINISH_LR=${FINISH_LR:-3e-4}
FINISH_CROP=${FINISH_CROP:-}
WEIGHTS=${WEIGHTS:-topdown/seg/weights}   # another folder to try a recipe without replacing the shipped file
# warm start of the main run (`topdown train --init`): none for H&E; a DAPI model starts from
# its preset's shipped H&E model (DAPI_INIT below); INIT=none trains from scratch
INIT=${INIT:-}
PRESETS=("$@")
if [ ${#PRESETS[@]} -eq 0 ]; then
  PRESETS=(mouse_brain_coronal spinal_cord sciatic_nerve olfactory_bulb cortex_laminar)
fi

# frame size and pixel size: spinal cord and bulb at the presets' own imaging (256 px frames
# at 8 um/px, trained on 128 px crops): at half that resolution their thin regions (central
# canal, mitral cell layer) were 1-4 px wide. sciatic_nerve at 2 um/px (512 um fields): its
# perineurium is 8-20 um thick, 1-3 px at the preset's 6 um/px (1,200 frames, mIoU on 200
# seed-3 frames: 0.79 at 6, 0.83 at 3, 0.84 at 2 um/px; 0.85 with N=2000; a 5 um/px bulb
# was no better than 8; the bulb gains from frames: N=1200 0.793, 2000 0.819, 3000 0.828 held-out,
# and from a finish: FINISH_EPOCHS=10 0.848, 16 0.852).
# mouse_brain_coronal at 20 um/px on whole 256 px frames (5 mm fields) with a sixth U-Net
# level: a 5-level net at 20 um/px on 128 px crops scored higher on simulations than at
# 40 um/px (0.734 vs 0.653) but called much of the real Visium cortex thalamus (Nrgn AUROC
# 0.77): its receptive field spans half as many mm. The sixth level and whole-frame crops
# give it back the 40 um/px model's context with twice the resolution (held-out 0.774 at
# 40 um/px -> 0.845 with FINISH_EPOCHS=4; benchmarks/visium_markers.py Nrgn 0.861 -> 0.928).
# cortex_laminar: 16 um/px x 128
# (2 mm fields: the whole depth of the cortex, layers told apart by nuclear density).
declare -A PX=( [mouse_brain_coronal]=20 [spinal_cord]=8 [sciatic_nerve]=2 [olfactory_bulb]=8 [cortex_laminar]=16 )
declare -A FRAME=( [mouse_brain_coronal]=256 [spinal_cord]=256 [sciatic_nerve]=256 [olfactory_bulb]=256
                   [cortex_laminar]=128 )
declare -A CROPS=( [mouse_brain_coronal]=256 [spinal_cord]=128 [sciatic_nerve]=128 [olfactory_bulb]=128
                   [cortex_laminar]=128 )
FIVE_LEVELS=16,32,64,128,192   # every other preset (a DAPI model takes its preset's)
declare -A NET=( [mouse_brain_coronal]=16,32,64,128,192,256 )
# fluorescence (DAPI) models see the section's nuclear density at 16 um/px (256 px frames =
# 4 mm fields, trained on whole frames): enough context to tell brain regions apart.
# At 4 um/px (512 um fields) a model could not (held-out mIoU 0.23): inside such a field the
# hippocampus or hypothalamus looks like any other sparse grey matter. The DAPI model takes
# its preset's H&E network (six levels for the brain) and starts from its shipped H&E weights
# (DAPI_INIT): where regions lie carries over, only the stain is new. Held-out mIoU of the
# mouse brain DAPI model: 0.735 (5 levels, 128 px crops, from scratch, 30 epochs), 0.806
# (6 levels, whole frames, from scratch, 1,200 frames, 24 + 4 epochs), 0.834 (the same
# from the H&E weights, 2,000 frames, 18 + 3 epochs, session 15), 0.845 (that model
# continued on 4,000 frames, 6 + 2 epochs at LR=1e-3, session 16), 0.855 (continued again
# on 4,000 new frames, SIM_SEED=4: the shipped model, session 17).
# See topdown/seg/weights/README.md.
DAPI_PX=${DAPI_PX:-16}
DAPI_SIZE=${DAPI_SIZE:-256}
# upright: dorsal up within +/-30 deg, so where a region lies tells it apart (dorsal vs ventral
# horn, cortex vs hypothalamus, layer 1 vs layer 6); these models expect upright images.
# free: any rotation or flip, for tissue whose anatomy has no "up" (concentric bulb layers,
# nerve fascicles). DAPI models take their preset's orientation.
declare -A ORIENT=( [mouse_brain_coronal]=upright [spinal_cord]=upright [cortex_laminar]=upright
                    [sciatic_nerve]=free [olfactory_bulb]=free )
ORIENTATION=${ORIENTATION:-}
# presets whose shipped H&E model is the simulation-only one adapted, without labels, to real
# sections (benchmarks/adapt_shipped.sh, run after this script): their simulation-only model
# is written to $WEIGHTS/sim/ (td.seg.load(preset, kind="sim")), the starting point of that step
declare -A ADAPTED=( [olfactory_bulb]=1 [cortex_laminar]=1 )

for preset in "${PRESETS[@]}"; do
  px=${PX[$preset]}
  size=${SIZE:-${FRAME[$preset]}}
  crop=${CROP:-${CROPS[$preset]}}
  widths=${WIDTHS:-${NET[$preset]:-$FIVE_LEVELS}}
  name=$preset
  if [ "$MODALITY" = dapi ]; then
    px=$DAPI_PX; size=${SIZE:-$DAPI_SIZE}; crop=${CROP:-$size}; name=${preset}_dapi
  fi
  init=${INIT:-}
  if [ -z "$init" ] && [ "$MODALITY" = dapi ]; then init=${DAPI_INIT:-topdown/seg/weights/$preset.safetensors}; fi
  init_args=()
  if [ -n "$init" ] && [ "$init" != none ]; then init_args=(--init "$init"); fi
  orient=${ORIENT[$preset]}
  if [ -n "$PIXEL_SIZE" ]; then px=$PIXEL_SIZE; fi
  if [ -n "$ORIENTATION" ]; then orient=$ORIENTATION; fi
  out_dir=$WEIGHTS
  if [ -n "${ADAPTED[$preset]:-}" ] && [ "$MODALITY" = he ]; then out_dir=$WEIGHTS/sim; mkdir -p "$out_dir"; fi
  data="$SIMS/$name"
  if [ "$SIM_SEED" != 1 ]; then data="$SIMS/${name}_seed$SIM_SEED"; fi
  topdown simulate --preset "$preset" --modality "$MODALITY" --n "$N" --size "$size" --pixel-size "$px" \
      --seed "$SIM_SEED" --workers "$WORKERS" --out "$data"
  topdown simulate --preset "$preset" --modality "$MODALITY" --n "$N_TEST" --size "$size" --pixel-size "$px" \
      --seed 2 --workers "$WORKERS" --out "$SIMS/${name}_test"
  trained="$out_dir/$name.safetensors"
  if [ "$FINISH_EPOCHS" -gt 0 ]; then trained="$SIMS/$name.base.safetensors"; fi
  topdown train --data "$data" --out "$trained" --epochs "$EPOCHS" --lr "$LR" \
      --widths "$widths" --device "$DEVICE" --precision "$PRECISION" --threads "$THREADS" --seed 0 --name "$name" \
      --orientation "$orient" --crop "$crop" ${init_args[@]+"${init_args[@]}"}
  if [ "$FINISH_EPOCHS" -gt 0 ]; then
    topdown train --data "$data" --init "$trained" --out "$out_dir/$name.safetensors" \
        --epochs "$FINISH_EPOCHS" --lr "$FINISH_LR" --crop "${FINISH_CROP:-$size}" --no-class-balance \
        --device "$DEVICE" --precision "$PRECISION" --threads "$THREADS" --seed 0 --name "$name" \
        --orientation "$orient"
  fi
  rm -f "$out_dir/$name.safetensors.state.safetensors" "$SIMS/$name.base.safetensors.state.safetensors"   # resume state is not shipped
  python benchmarks/write_eval.py "$out_dir/$name" "$SIMS/${name}_test"
done
