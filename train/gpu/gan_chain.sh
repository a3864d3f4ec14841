#!/usr/bin/env bash
# GPU-machine job chain for issue 5 (run by `device_session.sh start-gan`), on one GPU:
#   attribute net (3.5 min) -> wait until minute SNAP -> snapshot of the running StyleGAN checkpoint ->
#   export its EMA generator -> attribute directions in W -> MTV-TSA encoder for the rest of M minutes.
# The snapshot generator is the one shipped with its encoder and directions; the StyleGAN job keeps training
# (its checkpoint is carried to the next session, where encoder and directions are refitted).
set -u
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"  # --root/--weights options -> DATA CKPT RUN LOGS W
M=${1:?minutes}; SNAP=${2:-13}
t0=$(date +%s)
python3 -m train.attributes --shards $DATA --ckpt $CKPT/attributes --out $RUN/attr --minutes 3.5 --device cuda
while [ $(( $(date +%s) - t0 )) -lt $(( SNAP * 60 )) ]; do sleep 5; done
python3 -m train.resume_pack snapshot $CKPT/stylegan $CKPT/stylegan-snap
python3 -m train.stylegan --export --ckpt $CKPT/stylegan-snap --out $RUN/gan --device cuda
python3 -m train.directions --generator $RUN/gan/stylegan --attributes $RUN/attr/attributes --out $RUN/gan --device cuda
left=$(python3 -c "print(round($M - 0.5 - ($(date +%s) - $t0) / 60, 2))")
echo "encoder gets $left minutes"
python3 -m train.encoder --generator $RUN/gan/stylegan --shards $DATA --ckpt $CKPT/encoder --out $RUN/gan \
  --minutes "$left" --device cuda --arcface $W
