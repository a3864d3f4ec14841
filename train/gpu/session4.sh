#!/usr/bin/env bash
# GPU-machine session 4 (4 GPUs), started detached by `device_session.sh start-s4 SG POSE ENC`:
#   GPUs 0-2: StyleGAN resumed data-parallel (torchrun, global batch 192) for SG minutes -> export
#             -> GPU 0: encoder refit (warm start) for ENC minutes; GPU 1: attribute directions; then the
#             model latency benchmark of the new models on GPU 1
#   GPU 3:    pose editor warm-started from the bundled checkpoints, identity weight 2, POSE minutes
#   PROFILE=1: first time 20 StyleGAN steps eager and compiled (--profile) on GPU 3, then the pose job
# Carried as .cache/carry7 and copied to $ROOT/carry7: encoder/ (last encoder), attributes/ (attribute net),
# pose-sampler/, pose-inpainter/ (the bundled ones).
set -u
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"  # --root/--weights options -> DATA CKPT RUN LOGS W
SG=${1:?stylegan minutes}; POSE=${2:?pose minutes}; ENC=${3:?encoder minutes}
C=$ROOT/carry7
mkdir -p $RUN/gan $LOGS
export PYTHONUNBUFFERED=1

(
  if [ "${PROFILE:-0}" = 1 ]; then
    for c in "" --compile; do
      CUDA_VISIBLE_DEVICES=3 python3 -m train.stylegan --shards $DATA --ckpt $CKPT/sg-profile --out /tmp/sgp \
        --device cuda --profile 20 $c > $LOGS/profile${c:+-compile}.log 2>&1
    done
  fi
  CUDA_VISIBLE_DEVICES=3 python3 -m train.pose --shards $DATA --ckpt $CKPT/pose --out $RUN/pose \
    --minutes "$POSE" --device cuda --arcface $W --init $C --w-id 2 > $LOGS/pose.log 2>&1
) < /dev/null &

CUDA_VISIBLE_DEVICES=0,1,2 python3 -m torch.distributed.run --standalone --nproc_per_node 3 -m train.stylegan \
  --shards $DATA --ckpt $CKPT/stylegan --out $RUN/gan --minutes "$SG" --device cuda --ckpt-minutes 4 \
  ${SG_FLAGS:-} > $LOGS/stylegan.log 2>&1
bash train/gpu/gan_refit.sh $RUN/gan/stylegan $C/encoder $C/attributes $RUN/gan "$ENC"
echo "session4 chain done" >> $LOGS/stylegan.log
