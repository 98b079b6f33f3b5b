#!/usr/bin/env bash
# Train the nucleus instance models (nuclei_dapi, nuclei_he) from `topdown simulate` frames and
# their exact nucleus masks, then score them (benchmarks/nuclei.py: held-out simulated frames,
# the real MERFISH DAPI crop, speed). Exact commands; run from the repository root.
#
#   bash benchmarks/train_nuclei.sh              # both models (nuclei_he starts from nuclei_dapi)
#   bash benchmarks/train_nuclei.sh dapi         # nuclei_dapi only
#   STEPS=6000 THREADS=4 bash benchmarks/train_nuclei.sh dapi
#   DEVICE=cuda bash benchmarks/train_nuclei.sh   # the network on a GPU (default auto: one if present;
#                                                # 0.04 s a step on an H200 against 0.155 s on 2 CPU cores)
#   DESIGN=steps RUNS=runs/nuclei_steps bash benchmarks/train_nuclei.sh dapi
#                  # the step-field design (topdown.seg.nucleus_flow) instead of edge-distance bins
#   WIDTHS=16,32,64,128 RUNS=runs/nuclei_wide bash benchmarks/train_nuclei.sh dapi
#                  # a double-width U-Net (default 8,16,32,64); the later stages keep it (--init)
#
# Re-running resumes: the simulations skip finished frames and training continues from its
# last checkpoint (--resume) to STEPS. Results go to $RUNS; copy nuclei_{dapi,he}
# .{safetensors,json} to topdown/seg/weights/nuclei/ once their figures are checked.
#
# Data: mouse_brain_coronal frames of 256 px at 0.4 µm/px, simulation seed 0 (600 DAPI, 500
# H&E). Training holds out 10 % of the frames (split seed 0; their indices are the model's
# train_config.val_frames), the simulated test of benchmarks/nuclei.py.
# nuclei_dapi: from random weights, STEPS steps of 8 random 128 px crops at peak LR (warm-up +
# cosine; -> nuclei_dapi_base), then FINISH_STEPS more from those weights at FINISH_LR.
# nuclei_he: fine-tuned from nuclei_dapi on the H&E frames (input 255 - red channel).
set -euo pipefail

SIMS=${SIMS:-sims_nuclei}
RUNS=${RUNS:-runs/nuclei}
STEPS=${STEPS:-3600}
LR=${LR:-3e-3}
FINISH_STEPS=${FINISH_STEPS:-1500}
FINISH_LR=${FINISH_LR:-1e-3}
HE_STEPS=${HE_STEPS:-1000}
HE_LR=${HE_LR:-2e-3}
THREADS=${THREADS:-2}
DEVICE=${DEVICE:-auto}
DESIGN=${DESIGN:-distance}
WIDTHS=${WIDTHS:-}
WORKERS=${WORKERS:-2}
MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then MODELS=(dapi he); fi
mkdir -p "$RUNS"

train() {  # data out name steps lr start-args...
  local data=$1 out=$2 name=$3 steps=$4 lr=$5; shift 5
  local start=("$@")
  if [ -f "$out.state.safetensors" ]; then start=(--resume); fi   # a rerun continues
  topdown train --task nuclei --data "$data" --out "$out" --name "$name" --steps "$steps" --lr "$lr" \
      --threads "$THREADS" --device "$DEVICE" --design "$DESIGN" --seed 0 "${start[@]}"
}

for m in "${MODELS[@]}"; do
  case "$m" in dapi) n=600 ;; he) n=500 ;; *) echo "unknown model '$m' (dapi or he)" >&2; exit 2 ;; esac
  topdown simulate --preset mouse_brain_coronal --modality "$m" --pixel-size 0.4 --size 256 --n "$n" \
      --seed 0 --workers "$WORKERS" --out "$SIMS/$m"
  if [ "$m" = dapi ]; then
    train "$SIMS/dapi" "$RUNS/nuclei_dapi_base.safetensors" nuclei_dapi "$STEPS" "$LR" --resume \
        ${WIDTHS:+--widths "$WIDTHS"}
    train "$SIMS/dapi" "$RUNS/nuclei_dapi.safetensors" nuclei_dapi "$FINISH_STEPS" "$FINISH_LR" \
        --init "$RUNS/nuclei_dapi_base.safetensors"
    python benchmarks/nuclei.py --model "$RUNS/nuclei_dapi.safetensors" --json "$RUNS/nuclei_dapi.bench.json" \
        --overlay "$RUNS/merfish_overlay.png"
  else
    train "$SIMS/he" "$RUNS/nuclei_he.safetensors" nuclei_he "$HE_STEPS" "$HE_LR" --init "$RUNS/nuclei_dapi.safetensors"
    python benchmarks/nuclei.py --model "$RUNS/nuclei_he.safetensors" --skip-real --skip-speed \
        --json "$RUNS/nuclei_he.bench.json" --overlay ""
  fi
done
