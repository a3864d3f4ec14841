#!/usr/bin/env bash
# GPU-machine session 6 (4 GPUs), started detached by `device_session.sh start-s6 POSE ENC` after the first call
# has put the 128 px shards in $ROOT/data and the identity-loss net in $FACELAB_WEIGHTS:
#   GPU 0: pose editor warm-started from the bundled one, --end-to-end (the inpainter's identity loss reaches
#          the sampler's warp), POSE minutes, lr 5e-5
#   GPU 3: the same warm start with the default (thesis) setting, POSE minutes, lr 5e-5
#   GPU 1: attribute directions with the age slider from the labeller's mean gradient (train.directions
#          --gradient age), and a probe with every slider so (--gradient all); then free for the API benchmark
#   GPU 2: a slimmer MTV encoder (--channel-base 8192: half the channels at 128 and 64 px, for the 2-core CPU
#          latency goal), its coarse blocks warm-started from the bundled encoder, ENC minutes
# Carried by later calls to $ROOT/c6: stylegan/, attributes/, pose-sampler/, pose-inpainter/ (flag ready-a),
# mtv-encoder/ (flag ready-b). Each job waits for its flag.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"  # --root/--weights options -> DATA CKPT RUN LOGS W
POSE=${1:?pose minutes}; ENC=${2:?encoder minutes}
C=$ROOT/c6
mkdir -p $RUN $LOGS
export PYTHONUNBUFFERED=1
wait_for() { while [ ! -f $C/$1 ]; do sleep 3; done; }

(
  wait_for ready-a
  mkdir -p $C/pose-init && ln -sfn $C/pose-sampler $C/pose-init/pose-sampler && \
    ln -sfn $C/pose-inpainter $C/pose-init/pose-inpainter
  CUDA_VISIBLE_DEVICES=0 python3 -m train.pose --shards $DATA --ckpt $CKPT/pose-e2e --out $RUN/pose-e2e \
    --minutes "$POSE" --device cuda --arcface $W --init $C/pose-init --end-to-end --lr 5e-5 --lr-d 5e-5 \
    > $LOGS/pose-e2e.log 2>&1
) < /dev/null &
(
  wait_for ready-a
  sleep 2
  CUDA_VISIBLE_DEVICES=3 python3 -m train.pose --shards $DATA --ckpt $CKPT/pose-ft --out $RUN/pose-ft \
    --minutes "$POSE" --device cuda --arcface $W --init $C/pose-init --lr 5e-5 --lr-d 5e-5 \
    > $LOGS/pose-ft.log 2>&1
) < /dev/null &
(
  wait_for ready-a
  CUDA_VISIBLE_DEVICES=1 python3 -m train.directions --generator $C/stylegan --attributes $C/attributes \
    --out $RUN/dir-age --device cuda --gradient age > $LOGS/directions-age.log 2>&1
  CUDA_VISIBLE_DEVICES=1 python3 -m train.directions --generator $C/stylegan --attributes $C/attributes \
    --out $RUN/dir-all --device cuda --gradient all > $LOGS/directions-all.log 2>&1
) < /dev/null &
(
  wait_for ready-b
  CUDA_VISIBLE_DEVICES=2 python3 -m train.encoder --generator $C/stylegan --init $C/mtv-encoder --shards $DATA \
    --ckpt $CKPT/encoder-slim --out $RUN/enc-slim --minutes "$ENC" --device cuda --channel-base 8192 \
    --phase1-frac 0.5 --arcface $W > $LOGS/encoder-slim.log 2>&1
  CUDA_VISIBLE_DEVICES=2 python3 -m benchmarks.gpu_models --device cuda $C/stylegan $RUN/enc-slim/encoder \
    > $LOGS/gpu_bench.log 2>&1
) < /dev/null &
wait
echo "session6 done" >> $LOGS/session6.log
