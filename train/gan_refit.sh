#!/usr/bin/env bash
# Refit the encoder (warm start) and the directions to a newer StyleGAN export, on one GPU, and put the results
# in $OUT as <=15 MiB tar pieces. Carried: .cache/carry6/{stylegan,encoder221,attributes}; shards in /root/data.
#   bash train/gan_refit.sh MINUTES
set -u
M=${1:-3}
C=.cache/carry6; RUN=/root/run/gan470
mkdir -p $RUN /root/logs
PYTHONUNBUFFERED=1 python3 -m train.directions --generator $C/stylegan --attributes $C/attributes --out $RUN \
  --device cuda > /root/logs/directions470.log 2>&1 &
PYTHONUNBUFFERED=1 python3 -m train.encoder --generator $C/stylegan --init $C/encoder221 --shards /root/data \
  --ckpt /root/ckpt/encoder470 --out $RUN --minutes "$M" --device cuda --lr 4e-4 --warmup 100 --phase1-frac 0.4 \
  --arcface /root/weights/mobilefacenet_casia/model.safetensors 2>&1 | tee /root/logs/encoder470.log | grep -v "^step" 
wait
tail -n 16 /root/logs/directions470.log
cp /root/logs/*470.log $RUN/
(cd /root/run && tar -cf /root/gan470.tar gan470 && split -b 15M -d -a 1 /root/gan470.tar "$OUT/gan470.tar.")
ls -la "$OUT"
