# Sourced by every GPU-run script in train/gpu/ (never run alone). Where a session keeps its files on the GPU
# machine, from leading options of the calling script, else the environment, else the defaults under /root:
#   --root DIR     (FACELAB_GPU_ROOT, default /root)      data/ (shards), ckpt/, run/, logs/, pack/, carried folders
#   --weights DIR  (FACELAB_WEIGHTS, default ROOT/weights) training-only nets: mobilefacenet_casia/model.safetensors
# e.g. `bash train/gpu/device_session.sh --root /scratch/facelab start 20`. The values are exported, so the
# scripts one script starts see the same paths.
while [ $# -gt 0 ]; do
  case "$1" in
    --root) FACELAB_GPU_ROOT=${2:?--root DIR}; shift 2 ;;
    --weights) FACELAB_WEIGHTS=${2:?--weights DIR}; shift 2 ;;
    *) break ;;
  esac
done
export FACELAB_GPU_ROOT=${FACELAB_GPU_ROOT:-/root}
export FACELAB_WEIGHTS=${FACELAB_WEIGHTS:-$FACELAB_GPU_ROOT/weights}
ROOT=$FACELAB_GPU_ROOT
DATA=$ROOT/data; CKPT=$ROOT/ckpt; RUN=$ROOT/run; LOGS=$ROOT/logs
W=$FACELAB_WEIGHTS/mobilefacenet_casia/model.safetensors  # identity-loss net (--arcface of the trainers)
