"""Model-only latency at batch 1 on the GPU machine (no face front-end: dlib is not installed there).

    python -m benchmarks.gpu_models --device cuda [--repeats 100] [FOLDER ...]

Each FOLDER is a save_pretrained model folder (default: every bundled checkpoint under checkpoints/).
Times the model's inference call the app makes, after 10 warm-up calls, with torch.cuda.synchronize
around each call; prints the median and p95 in ms, fp32 and fp16 autocast, and the device name.
  parser: predict on 256 px; masked-vae: reconstruct 144 px; multistage-vae: reconstruct 128 px;
  mask2face: encode_styles + generate 256 px (and generate alone); deocclusion: inpaint 256 px (incl. prior);
  stylegan: synthesis 128 px (one slider update); mtv encoder: encode 128 px; pose: sampler + inpainter 128 px
  (the sampler folder is timed with its sibling inpainter; a *nosampler* inpainter alone).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import time

import numpy as np
import torch


def timeit(fn, repeats: int, dev: torch.device) -> tuple[float, float]:
    for _ in range(10):
        fn()
    ts = []
    for _ in range(repeats):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        ts.append((time.perf_counter() - t) * 1000)
    return float(np.median(ts)), float(np.percentile(ts, 95))


def calls(folder: str, dev: torch.device) -> dict:
    with open(os.path.join(folder, "config.json")) as f:
        cls = json.load(f)["_class"]
    g = torch.Generator().manual_seed(0)
    if cls == "FaceParser":
        from core.models.parser import FaceParser
        m = FaceParser.from_pretrained(folder, device=dev)
        x = torch.rand(1, 3, 256, 256, generator=g).to(dev)
        return {"parse 256": lambda: m(x).argmax(1)}
    if cls == "MaskedVAE":
        from core.models.masked_vae import MaskedVAE
        m = MaskedVAE.from_pretrained(folder, device=dev)
        x = torch.rand(1, 3, 144, 144, generator=g).to(dev)
        return {"reconstruct 144": lambda: m.reconstruct(x)}
    if cls == "MultiStageVAE":
        from core.models.multistage_vae import MultiStageVAE
        m = MultiStageVAE.from_pretrained(folder, device=dev)
        x = torch.rand(1, 3, 128, 128, generator=g).to(dev)
        return {"reconstruct 128": lambda: m.reconstruct(x)}
    if cls == "Mask2Face":
        from core.models.mask2face import Mask2Face
        m = Mask2Face.from_pretrained(folder, device=dev)
        lab = torch.randint(0, 19, (1, 256, 256), generator=g).to(dev)
        x = torch.rand(1, 3, 256, 256, generator=g).to(dev)
        styles = m.encode_styles(x, lab)
        return {"encode+generate 256": lambda: m.generate(lab, m.encode_styles(x, lab)),
                "generate 256": lambda: m.generate(lab, styles)}
    if cls == "Inpainter":
        from core.models.deocclusion import Inpainter
        m = Inpainter.from_pretrained(folder, device=dev)
        x = torch.rand(1, 3, 256, 256, generator=g).to(dev)
        k = torch.zeros(1, 1, 256, 256, device=dev)
        k[..., 100:160, 60:200] = 1
        return {"inpaint 256": lambda: m.inpaint(x, k)}
    if cls == "StyleGAN2Generator":
        from core.models.stylegan import StyleGAN2Generator
        m = StyleGAN2Generator.from_pretrained(folder, device=dev)
        ws = m.mapping(torch.randn(1, m.z_dim, generator=g).to(dev))
        return {"synthesis 128 (one slider update)": lambda: m.synthesis(ws, noise_mode="const", fused_modconv=True)}
    if cls == "MTVEncoder":
        from core.models.encoder import MTVEncoder
        m = MTVEncoder.from_pretrained(folder, device=dev)
        x = torch.rand(1, 3, 128, 128, generator=g).to(dev) * 2 - 1
        return {"encode 128": lambda: m(x)}
    if cls == "AttributeNet":
        from core.models.attributes import AttributeNet
        m = AttributeNet.from_pretrained(folder, device=dev)
        x = torch.rand(1, 3, 128, 128, generator=g).to(dev) * 2 - 1
        return {"attributes 128": lambda: m(x)}
    if cls in ("PixelAttentionSampler", "PoseInpainter"):
        from core.models.pose import PixelAttentionSampler, PoseInpainter, edit_pose, fit_template, target_landmarks
        from train.shards import load_source
        d = load_source("celeba_id", 128, root=os.environ.get("SHARDS", "/root/data"))
        x = torch.from_numpy(d["images"][:1]).permute(0, 3, 1, 2).float().div(255).to(dev)
        lm = torch.from_numpy(d["landmarks"][:1]).float().to(dev)
        pose = torch.from_numpy(d["pose"][:1]).float().to(dev)
        l3, p3 = fit_template(lm, pose[:, 0], pose[:, 1])
        tgt, _ = target_landmarks(l3, p3, pose[:, 0] + 20, pose[:, 1], 128)
        if cls == "PoseInpainter":
            inp = PoseInpainter.from_pretrained(folder, device=dev)
            samp_dir = os.path.join(os.path.dirname(folder.rstrip("/")), "pose-sampler")
            samp = PixelAttentionSampler.from_pretrained(samp_dir, device=dev) if (
                os.path.exists(samp_dir) and "nosampler" not in folder) else None
            label = "sampler + inpainter 128" if samp is not None else "inpainter alone (no-sampler ablation) 128"
            return {label: lambda: edit_pose(samp, inp, x, lm, tgt)}
        return {}
    raise ValueError(f"{folder}: no benchmark for {cls}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=100)
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    folders = a.folders or sorted(os.path.dirname(p) for p in glob.glob("checkpoints/*/config.json"))
    print(f"device {name}, batch 1, torch {torch.__version__}")
    print("| model | call | fp32 median ms | fp32 p95 | fp16 autocast median ms | fp16 p95 |")
    print("| --- | --- | --- | --- | --- | --- |")
    torch.backends.cudnn.benchmark = True
    with torch.no_grad():
        for folder in folders:
            for label, fn in calls(folder, dev).items():
                r32 = timeit(fn, a.repeats, dev)
                with torch.autocast(dev.type, dtype=torch.float16, enabled=dev.type == "cuda"):
                    r16 = timeit(fn, a.repeats, dev) if dev.type == "cuda" else (float("nan"),) * 2
                print(f"| {os.path.basename(folder.rstrip('/'))} | {label} | {r32[0]:.2f} | {r32[1]:.2f} | "
                      f"{r16[0]:.2f} | {r16[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
