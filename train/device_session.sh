#!/usr/bin/env bash
# One GPU-machine training session (see ../shared/docs/DEVICE.md), run from the repo root there.
#
#   bash train/device_session.sh unpack            # move carried shards/ckpts into /root/data, /root/ckpt
#   bash train/device_session.sh start MINUTES     # start every trainer detached, one job group per GPU
#   bash train/device_session.sh status            # last log lines of every job
#   bash train/device_session.sh pack              # after the jobs end: tar outputs + resumable state, split 15 MiB
#   bash train/device_session.sh fetch FIRST COUNT # copy COUNT pieces starting at FIRST into $OUT
#
# Jobs (GPU index in brackets; with fewer GPUs they wrap around):
#   [0] parser   [1] masked VAE h9 / mask-l1 / nomask-ssim-l2 + multi-stage VAE   [2] mask2face   [3] stylegan
set -u
DATA=/root/data; CKPT=/root/ckpt; RUN=/root/run; LOGS=/root/logs
cmd=${1:-status}

ngpu() { python3 -c 'import torch; print(max(1, torch.cuda.device_count()))'; }

launch() {  # launch GPU NAME ARGS...
  local gpu=$1 name=$2; shift 2
  mkdir -p "$LOGS" "$RUN/$name"
  CUDA_VISIBLE_DEVICES=$gpu PYTHONUNBUFFERED=1 setsid nohup python3 "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
  echo "started $name on GPU $gpu (pid $!)"
}

case $cmd in
unpack)  # what is shipped or measured: weights of the shipped models, every metrics/grid/card, logs
  mkdir -p /root/pack; rm -f /root/pack/*
  (cd /root && find run logs -type f \( -path 'run/parser/*' -o -path 'run/vae/masked-vae/*' \
      -o -path 'run/vae/multistage-vae/*' -o -name '*.png' -o -name '*.json' -o -name 'README.md' -o -name '*.log' \) \
      ! \( -name '*.safetensors*' -path 'run/vae/masked-vae-*' \) | sort > /root/pack/files.txt)
  (cd /root && grep -v -e '^run/mask2face/.*safetensors' -e '^run/stylegan/.*safetensors' /root/pack/files.txt \
      | tar -cf /root/pack/a_run.tar -T -)
  (cd /root/pack && split -b 15M -d -a 2 a_run.tar a_run.tar. && rm a_run.tar files.txt)
  ls -la /root/pack ;;
fetch)
  first=${2:-0}; count=${3:-4}
  ls /root/pack | sort | tail -n +$((first + 1)) | head -n "$count" | while read -r f; do cp "/root/pack/$f" "$OUT/"; done
  ls -la "$OUT" ;;
esac
