#!/usr/bin/env bash
# One GPU-machine training session (see ../shared/docs/DEVICE.md), run from the repo root there.
#
#   bash train/gpu/device_session.sh unpack            # copy carried shards/ckpts into $ROOT/data, $ROOT/ckpt
#   bash train/gpu/device_session.sh start MINUTES     # start every trainer detached, one job group per GPU
#   bash train/gpu/device_session.sh status            # last log lines of every job
#   bash train/gpu/device_session.sh pack              # after the jobs end: tar what is shipped/measured, 15 MiB pieces
#   bash train/gpu/device_session.sh fetch FIRST COUNT # copy COUNT pieces starting at FIRST into $OUT
# Leading `--root DIR --weights DIR` put the session's folders elsewhere than /root (train/gpu/paths.sh).
#
# Here, around the device calls (a call carries the whole working tree + `carry` paths, 64 MiB in all, and
# the bundled checkpoints alone are larger than that):
#   bash train/gpu/device_session.sh local-hide        # untrack checkpoints/ for the session (no commits meanwhile!)
#   bash train/gpu/device_session.sh local-restore     # track them again, right after the last device call
# Carry the shards in <= 60 MiB groups (e.g. hard links in .cache/carry1, .cache/carry2), copying each into
# $ROOT/data; carry .cache/resume (mask2face GAN state, fp16 parts; StyleGAN state in resume/stylegan, 46 MB:
# carry it on its own call) and `unpack` re-assembles it.
#
# Jobs (GPU index in brackets; with fewer GPUs they wrap around):
#   [0] parser + de-occlusion without prior (ablation)   [1] de-occlusion inpainter   [2] mask2face
#   [3] masked VAE h9 / mask-l1 / nomask-ssim-l2 (lr 1e-4, as the paper)
# (multi-stage VAE and StyleGAN: `start-extra M`, not run by default)
set -u
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"  # --root/--weights options -> DATA CKPT RUN LOGS W
cmd=${1:-status}

launch() {  # launch GPU NAME ARGS...
  local gpu=$1 name=$2; shift 2
  mkdir -p "$LOGS"
  CUDA_VISIBLE_DEVICES=$gpu PYTHONUNBUFFERED=1 setsid nohup python3 "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
  echo "started $name on GPU $gpu (pid $!)"
}

case $cmd in
unpack)
  mkdir -p "$DATA" "$CKPT"
  if [ -d .cache/shards ]; then cp .cache/shards/*.npz "$DATA"/; fi
  if [ -d .cache/ckpt ]; then cp -r .cache/ckpt/. "$CKPT"/; fi
  if ls .cache/resume/mask2face.part*.safetensors >/dev/null 2>&1; then
    mkdir -p "$CKPT/mask2face" && cp .cache/resume/mask2face_state.json "$CKPT/mask2face/state.json"
    python3 -m train.resume_pack unpack .cache/resume/mask2face.part*.safetensors --out "$CKPT/mask2face/state.safetensors"
  fi
  if ls .cache/resume/pose.part*.safetensors >/dev/null 2>&1; then
    mkdir -p "$CKPT/pose" && cp .cache/resume/pose_state.json "$CKPT/pose/pose.json"
    python3 -m train.resume_pack unpack .cache/resume/pose.part*.safetensors --out "$CKPT/pose/pose.safetensors"
  fi
  if [ -f .cache/resume/stylegan/state.json ]; then  # StyleGAN G, G_ema, D (fp16, no Adam: lr warm-up on resume)
    mkdir -p "$CKPT/stylegan" && cp .cache/resume/stylegan/* "$CKPT/stylegan/"
  fi
  if [ -d .cache/weights ]; then mkdir -p "$FACELAB_WEIGHTS" && cp -r .cache/weights/. "$FACELAB_WEIGHTS"/; fi
  ls -la "$DATA" ;;
start)
  M=${2:?minutes}
  n=$(python3 -c 'import torch; print(max(1, torch.cuda.device_count()))')
  g() { echo $(( $1 % n )); }
  launch "$(g 0)" parser -m train.parser --shards $DATA --ckpt $CKPT/parser --out $RUN/parser --minutes "$M" --device cuda
  launch "$(g 0)" deocc-noprior -m train.deocclusion --no-prior --shards $DATA --ckpt $CKPT/deocclusion \
    --out $RUN/deocc --minutes "$M" --device cuda --arcface $W
  launch "$(g 1)" deocc -m train.deocclusion --shards $DATA --ckpt $CKPT/deocclusion --out $RUN/deocc \
    --minutes "$M" --device cuda --arcface $W
  launch "$(g 2)" mask2face -m train.mask2face --shards $DATA --ckpt $CKPT/mask2face --out $RUN/mask2face \
    --minutes "$M" --device cuda --parser checkpoints/parser
  for v in h9 mask-l1 nomask-ssim-l2; do
    launch "$(g 3)" vae-$v -m train.vae --model masked-vae --variant $v --shards $DATA --ckpt $CKPT/vae --out $RUN/vae \
      --minutes "$M" --device cuda --lr 1e-4
  done ;;
start-pose)  # issue 6 (next session): the model and the thesis's ablation without the sampling module
  M=${2:?minutes}
  launch 0 pose -m train.pose --shards $DATA --ckpt $CKPT/pose --out $RUN/pose --minutes "$M" --device cuda --arcface $W
  launch 1 pose-nosampler -m train.pose --no-sampler --shards $DATA --ckpt $CKPT/pose-nosampler --out $RUN/pose \
    --minutes "$M" --device cuda --arcface $W ;;
start-gan)  # issue 5 + 6 (session 3): pose, pose ablation, StyleGAN; attributes -> G snapshot -> directions -> encoder
  M=${2:?minutes}; SNAP=${3:-13}   # minutes after launch at which GPU 3 takes the StyleGAN snapshot it builds on
  launch 0 pose -m train.pose --shards $DATA --ckpt $CKPT/pose --out $RUN/pose --minutes "$M" --device cuda --arcface $W
  launch 1 pose-nosampler -m train.pose --no-sampler --shards $DATA --ckpt $CKPT/pose-nosampler --out $RUN/pose \
    --minutes "$M" --device cuda --arcface $W
  launch 2 stylegan -m train.stylegan --shards $DATA --ckpt $CKPT/stylegan --out $RUN/stylegan --minutes "$M" \
    --device cuda --ckpt-minutes 3
  CUDA_VISIBLE_DEVICES=3 PYTHONUNBUFFERED=1 setsid nohup bash train/gpu/gan_chain.sh "$M" "$SNAP" > "$LOGS/gan-chain.log" 2>&1 < /dev/null &
  echo "started gan-chain on GPU 3 (snapshot at $SNAP min)" ;;
pack-gan)  # session 3: exported models, metrics, grids, logs + the StyleGAN resume state (G, G_ema, D fp16, no Adam)
  mkdir -p $ROOT/pack; rm -f $ROOT/pack/*
  python3 -m train.resume_pack snapshot $CKPT/stylegan $ROOT/run/resume-stylegan
  if [ -f $CKPT/pose/pose.safetensors ]; then  # pose GAN state (nets, EMAs, D; fp16, no Adam) for the next session
    mkdir -p $ROOT/run/resume && cp $CKPT/pose/pose.json $ROOT/run/resume/pose_state.json
    python3 -m train.resume_pack pack $CKPT/pose/pose.safetensors $ROOT/run/resume --prefix pose
  fi
  (cd $ROOT && find run logs -type f \( -path 'run/*' -o -name '*.log' \) | grep -v '^run/stylegan/' | sort > $ROOT/files.txt)
  (cd $ROOT && tar -cf $ROOT/pack/a_run.tar -T $ROOT/files.txt)
  (cd $ROOT/pack && split -b 15M -d -a 2 a_run.tar a_run.tar. && rm a_run.tar)
  ls -la $ROOT/pack ;;
start-s4)  # session 4 (4 GPUs): StyleGAN on 3 GPUs -> encoder refit + directions + bench; pose on GPU 3
  SG=${2:?stylegan minutes}; POSE=${3:?pose minutes}; ENC=${4:?encoder minutes}
  mkdir -p "$LOGS"
  setsid nohup bash train/gpu/session4.sh "$SG" "$POSE" "$ENC" > "$LOGS/session4.log" 2>&1 < /dev/null &
  echo "started train/session4.sh (pid $!)" ;;
start-s5)  # session 5 (4 GPUs): StyleGAN (eyeglasses x4) on 3 GPUs -> encoder + directions + bench;
           # GPU 3: directions of the bundled G, de-occlusion with the face-region prior
  SG=${2:?stylegan minutes}; ENC=${3:?encoder minutes}; DEO=${4:?de-occlusion minutes}
  mkdir -p "$LOGS"
  setsid nohup bash train/gpu/session5.sh "$SG" "$ENC" "$DEO" > "$LOGS/session5.log" 2>&1 < /dev/null &
  echo "started train/session5.sh (pid $!)" ;;
start-s6)  # session 6 (4 GPUs): two pose fine-tunes, directions (age from the labeller's gradient), slim encoder
  POSE=${2:?pose minutes}; ENC=${3:?encoder minutes}
  mkdir -p "$LOGS"
  setsid nohup bash train/gpu/session6.sh "$POSE" "$ENC" > "$LOGS/session6.log" 2>&1 < /dev/null &
  echo "started train/session6.sh (pid $!)" ;;
pack-s6)  # session 6: run/ (exports, metrics, grids; no resumable state) + logs, in 15 MiB tar pieces
  mkdir -p $ROOT/pack; rm -f $ROOT/pack/*
  (cd $ROOT && find run logs -type f | sort > $ROOT/files.txt)
  (cd $ROOT && tar -cf $ROOT/pack/a_run.tar -T $ROOT/files.txt)
  (cd $ROOT/pack && split -b 15M -d -a 2 a_run.tar a_run.tar. && rm a_run.tar)
  ls -la $ROOT/pack ;;
bench-carry-local)  # here: the API benchmark's payload in <= 58 MB carry folders .cache/c6b .. c6f (hard links;
  # c6a holds the first models of a session-6 run): wheels of gradio + deps missing on the GPU image (.whl/, see
  # ../.library device README), the dlib models xz-compressed (68-point model split in two), every bundled model
  F=$(python -c 'import face_recognition_models as f, os; print(os.path.dirname(f.__file__))')/models
  rm -rf .cache/c6?; mkdir -p .cache/c6a .cache/c6b .cache/c6c/whl .cache/c6d/whl .cache/c6e .cache/c6f
  for m in stylegan pose-sampler pose-inpainter directions; do cp -al checkpoints/$m .cache/c6a/; done
  for m in mtv-encoder parser deocclusion; do cp -al checkpoints/$m .cache/c6b/; done
  for m in mask2face masked-vae; do cp -al checkpoints/$m .cache/c6c/; done
  cp -al checkpoints/multistage-vae .cache/c6d/
  for f in .whl/*.whl; do case $f in *gradio-6*) cp -al $f .cache/c6d/whl/;; *face_recognition*) ;; *) cp -al $f .cache/c6c/whl/;; esac; done
  xz -T2 -6 -c $F/shape_predictor_68_face_landmarks.dat | split -b 32M -d -a 1 - .cache/c6e/sp68.xz.
  mv .cache/c6e/sp68.xz.1 .cache/c6f/
  xz -T2 -6 -c $F/dlib_face_recognition_resnet_model_v1.dat > .cache/c6e/resnet.dat.xz
  cp $F/mmod_human_face_detector.dat .cache/c6e/ && cp $F/../__init__.py .cache/c6e/frm_init.py
  du -shL .cache/c6? ;;
bench-stage)  # there, after every c6* folder was copied into $ROOT/c6 (one call each): install, unpack, models
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $ROOT/c6/whl/*.whl
  F=/tmp/site/face_recognition_models; mkdir -p $F/models; cp $ROOT/c6/frm_init.py $F/__init__.py
  cat $ROOT/c6/sp68.xz.0 $ROOT/c6/sp68.xz.1 | xz -d > $F/models/shape_predictor_68_face_landmarks.dat
  xz -dc $ROOT/c6/resnet.dat.xz > $F/models/dlib_face_recognition_resnet_model_v1.dat
  cp $ROOT/c6/mmod_human_face_detector.dat $F/models/
  rm -rf checkpoints && mkdir checkpoints
  for m in stylegan pose-sampler pose-inpainter directions mtv-encoder parser deocclusion mask2face masked-vae \
      multistage-vae; do cp -r $ROOT/c6/$m checkpoints/; done
  echo "then: PYTHONPATH=/tmp/site:\$PWD HF_HUB_OFFLINE=1 CUDA_VISIBLE_DEVICES=1 python3 -m benchmarks.api --n 10" ;;
pack-s4)  # sessions 4 and 5: run/ (exports, metrics, grids) + logs + the StyleGAN resume state, in 15 MiB tar pieces
  mkdir -p $ROOT/pack; rm -f $ROOT/pack/*
  python3 -m train.resume_pack snapshot $CKPT/stylegan $ROOT/run/resume-stylegan
  (cd $ROOT && find run logs -type f | sort > $ROOT/files.txt)
  (cd $ROOT && tar -cf $ROOT/pack/a_run.tar -T $ROOT/files.txt)
  (cd $ROOT/pack && split -b 15M -d -a 2 a_run.tar a_run.tar. && rm a_run.tar)
  ls -la $ROOT/pack ;;
start-extra)
  M=${2:?minutes}
  launch 0 multistage -m train.vae --model multistage-vae --shards $DATA --ckpt $CKPT/vae --out $RUN/vae \
    --minutes "$M" --device cuda
  launch 0 stylegan -m train.stylegan --shards $DATA --ckpt $CKPT/stylegan --out $RUN/stylegan \
    --minutes "$M" --device cuda ;;
local-hide)
  git rm -r --cached -q checkpoints && echo "checkpoints/" >> .git/info/exclude && echo "checkpoints/ untracked" ;;
local-restore)
  git reset -q -- checkpoints && sed -i '/^checkpoints\/$/d' .git/info/exclude && git status --short checkpoints ;;
status)
  for f in "$LOGS"/*.log; do echo "== $f"; tail -n 2 "$f" | cut -c1-220; done
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader ;;
pack)  # every exported model folder, metrics, grids, cards, logs, mask2face resume parts
  mkdir -p $ROOT/pack; rm -f $ROOT/pack/*
  # resumable GAN state (mask2face): fp16, no optimiser moments, in parts (python -m train.resume_pack)
  if [ -f $CKPT/mask2face/state.safetensors ]; then
    mkdir -p $ROOT/run/resume && cp $CKPT/mask2face/state.json $ROOT/run/resume/mask2face_state.json
    python3 -m train.resume_pack pack $CKPT/mask2face/state.safetensors $ROOT/run/resume --prefix mask2face
  fi
  (cd $ROOT && find run logs -type f \( -path 'run/*' -o -name '*.log' \) \
      | grep -v -e '^run/stylegan/.*safetensors' | sort > $ROOT/files.txt)
  (cd $ROOT && tar -cf $ROOT/pack/a_run.tar -T $ROOT/files.txt)
  (cd $ROOT/pack && split -b 15M -d -a 2 a_run.tar a_run.tar. && rm a_run.tar)
  ls -la $ROOT/pack ;;
fetch)
  first=${2:-0}; count=${3:-4}
  ls $ROOT/pack | sort | tail -n +$((first + 1)) | head -n "$count" | while read -r f; do cp "$ROOT/pack/$f" "$OUT/"; done
  ls -la "$OUT" ;;
esac
