#!/usr/bin/env bash
# GPU-machine session 5 (4 GPUs), started detached by `device_session.sh start-s5 SG ENC DEO`:
#   GPUs 0-2: StyleGAN resumed data-parallel (torchrun, global batch 192) for SG minutes, crops with eyeglasses
#             shown 4x as often -> export -> GPU 0: encoder refit (warm start) for ENC minutes; GPU 1: attribute
#             directions (100k samples, psi 1, rare-attribute fit); then the latency benchmark on GPU 1
#   GPU 3:    directions of the bundled generator with the same fit (in case the new one is not better), then
#             the de-occlusion inpainter warm-started from the bundled one, trained with the app's face-region
#             prior, for DEO minutes
# Carried (later calls) to $ROOT/carry8: attributes/, encoder/, deocclusion/, stylegan/ (the bundled ones); the
# 256 px celebamask + masked shards to $ROOT/data. The jobs that need them wait for $ROOT/carry8/ready.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"  # --root/--weights options -> DATA CKPT RUN LOGS W
SG=${1:?stylegan minutes}; ENC=${2:?encoder minutes}; DEO=${3:?de-occlusion minutes}
C=$ROOT/carry8
mkdir -p $RUN/gan $RUN/dir-bundled $LOGS
export PYTHONUNBUFFERED=1
wait_carry() { while [ ! -f $C/ready ]; do sleep 5; done; }

(
  wait_carry
  CUDA_VISIBLE_DEVICES=3 python3 -m train.directions --generator $C/stylegan --attributes $C/attributes \
    --out $RUN/dir-bundled --device cuda > $LOGS/directions-bundled.log 2>&1
  CUDA_VISIBLE_DEVICES=3 python3 -m train.deocclusion --shards $DATA --ckpt $CKPT/deocclusion --out $RUN/deocc \
    --minutes "$DEO" --device cuda --arcface $W --init $C/deocclusion --prior face > $LOGS/deocc.log 2>&1
) < /dev/null &

CUDA_VISIBLE_DEVICES=0,1,2 python3 -m torch.distributed.run --standalone --nproc_per_node 3 -m train.stylegan \
  --shards $DATA --ckpt $CKPT/stylegan --out $RUN/gan --minutes "$SG" --device cuda --ckpt-minutes 4 \
  --eyeglasses-repeat 4 ${SG_FLAGS:-} > $LOGS/stylegan.log 2>&1
wait_carry
bash train/gpu/gan_refit.sh $RUN/gan/stylegan $C/encoder $C/attributes $RUN/gan "$ENC"
echo "session5 chain done" >> $LOGS/stylegan.log
