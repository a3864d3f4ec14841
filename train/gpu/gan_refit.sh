#!/usr/bin/env bash
# After a StyleGAN export on the GPU machine: refit the attribute directions (GPU 1) and the encoder, warm-started
# (GPU 0), to it, then benchmark the new generator + encoder (GPU 1). Called by train/gpu/session4.sh and session5.sh.
#   bash train/gpu/gan_refit.sh GENERATOR ENCODER_INIT ATTRIBUTES OUT ENC_MINUTES
# Shards in $ROOT/data, the identity-loss net in $FACELAB_WEIGHTS; logs in $ROOT/logs.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"  # --root/--weights options -> DATA CKPT RUN LOGS W
G=${1:?generator folder}; INIT=${2:?encoder to start from}; ATTR=${3:?attribute net}; OUT=${4:?out folder}
ENC=${5:?encoder minutes}
export PYTHONUNBUFFERED=1
CUDA_VISIBLE_DEVICES=1 python3 -m train.directions --generator $G --attributes $ATTR --out $OUT --device cuda \
  > $LOGS/directions.log 2>&1 &
CUDA_VISIBLE_DEVICES=0 python3 -m train.encoder --generator $G --init $INIT --shards $DATA --ckpt $CKPT/encoder \
  --out $OUT --minutes "$ENC" --device cuda --lr 4e-4 --warmup 100 --phase1-frac 0.4 --arcface $W \
  > $LOGS/encoder.log 2>&1
wait  # only this script's own jobs (the directions), not the caller's
CUDA_VISIBLE_DEVICES=1 SHARDS=$DATA python3 -m benchmarks.gpu_models --device cuda $G $OUT/encoder \
  > $LOGS/gpu_bench.log 2>&1
