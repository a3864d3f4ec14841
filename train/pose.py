"""Train the pose editor (core/models/pose.py): Pixel Attention Sampler + pose inpainter (Yin 2022, ch. 3).

    python -m train.pose --shards .cache/shards --ckpt .cache/ckpt/pose --out out/pose --minutes 20 --device cuda \
        [--arcface /root/weights/mobilefacenet_casia/model.safetensors] [--no-sampler]
    python -m train.pose --smoke --device cpu --shards .cache/shards --ckpt /tmp/pose_ck --out /tmp/pose_out

Data (train/pose_data.py): pairs (A, B) of two photos of one CelebA identity (celeba_id_128, split 0),
weighted towards large yaw differences; self-reconstruction A -> A; CelebAMask-HQ faces with synthetic
occluders (pasted at 256 px, downscaled to 128) S_occ -> S. The target pose of a pair is B's landmarks
(2D from the shard, depth from the mean face fitted at B's yaw/pitch); of a reconstruction, the face's own.

Every step: the sampler warps A towards B (J^_fake) and A towards A (I^_recon); the inpainter turns
[J^_fake, I^_recon, S_occ] into [J_fake, I_recon, S_recon] (J^/I^ detached: each module minimises its own
loss, as the thesis's L_sampler and L_gen; `--end-to-end` lets the inpainter's loss reach the sampler);
then one discriminator step and one generator step (sampler + inpainter).

Phases (thesis §3.4.1: inpainter pre-trained 20k of 130k iterations, then everything jointly): for the first
`--pretrain-steps` steps the inpainter sees only I^_recon and S_occ (a plain inpainting / reconstruction
model) while the sampler already trains on its own losses; afterwards the pairs J are added. Steps, not
wall-clock, decide the phase, so a resumed run continues where it stopped.

Losses (thesis Eq. 3.1-3.14; every weight 1 unless the thesis gives one; our additions marked *):
 sampler  L_pix  = L1(J^_fake, B~) on B's face region + 0.1 * L1(I^_recon, A)           (Eq. 3.1, 0.1 given)
          L_seg  = Dice(A's landmark maps carried by the grid, B's landmark maps), summed over 8 classes (3.3);
                   *averaged with the same Dice on 4x average-pooled maps (wider capture range)
          L_per  = perceptual(J^_fake, B~) on B's face region                          (3.4; see below)
          L_tv   = TV(J^_fake) + TV(I^_recon), squared differences, mean over pixels   (3.6)
          *L_flow = 1 * TV (L1) of the predicted offset field (smooth warps outside the face)
          *L_lmk = 0.1 * mean distance (px) between the grid read at the target landmarks 17-67 and the input's
                   landmarks (where the sampler should fetch each landmark; the jaw contour is a silhouette, left out)
          *L_mask = 0.1 * BCE of the validity mask to exp(-|J^_fake - B~| / 0.1) on B's face (1 elsewhere
                    for reconstructions): the mask says which warped pixels to trust
 inpainter L_pix = L1(J_fake, B~) on B's face + 0.1 * L1(I_recon, A) + L1(S_recon, S)  (3.9; lambda not given,
                   0.1 as Eq. 3.1)
          L_per  = perceptual(J_fake, B~) on B's face + perceptual(S_recon, S)          (3.10)
          L_id   = 1 - cos(MobileFaceNet(J_fake), MobileFaceNet(B))                   (3.11; LightCNN L1 there)
          L_tv   = TV of J_fake, I_recon, S_recon                                     (3.13)
          L_adv  = -D(fake), hinge (3.12, 3.14); projection discriminator on the target landmark code, global
                   score + patch scores averaged
          *L_distill = 1 * (1 - cos(distill_head(identity vector of the input photo), MobileFaceNet(clean input)))
 B~ = B with its face colour statistics matched to A's (per-channel mean/std inside the landmark face regions):
 photos of one person differ in lighting and white balance, the thesis wants A's style kept; `--no-colour-match`
 compares with B as is. Pair terms are restricted to B's landmark face region (dilated 3 px): background, hair
 and clothes of two photos do not correspond. Perceptual term: no VGG-Face / ImageNet weights exist here, so it
 is the L1 between MobileFaceNet (training-only identity net) feature maps at 4 depths (28x24 ... 7x6), each
 normalised by the target's mean magnitude, with the background outside the face region set to grey; without
 the identity net it falls back to discriminator feature matching (`--w-fm`).
Optimiser: Adam lr 1e-4, betas (0.9, 0.999) for all three nets (thesis); bf16 autocast; EMA (0.999) of
sampler and inpainter (exported, fp16). Resumable state (nets, EMAs, Adam moments as `opt_*` keys, counters)
in --ckpt/<variant>.safetensors + .json.
Out: --out/pose-sampler/ and --out/pose-inpainter/ (Hub-layout folders with cards; `--no-sampler`:
--out/pose-inpainter-nosampler/ only), --out/<variant>_metrics.json, --out/<variant>_grid.png
(input | target photo | half-face aligned | warped | validity mask | output), --out/<variant>_sweep.png
(val inputs rotated to yaw -30 ... +30 with template-rotated landmarks, the app's use; warped and output rows).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from core.metrics import ssim_map_box as ssim_map  # 7x7 box-window SSIM loss
from core.models.pose import (PixelAttentionSampler, PoseInpainter, ProjectionDiscriminator, affine_grid_px, edit_pose,
                              invert_affine, preprocess, region_maps, target_landmarks)
from train.pose_data import SIZE, Data
from train.resume_pack import load_opt, opt_tensors

SMOKE_SAMPLER = dict(widths=(8, 16, 24, 32), blocks=1, cond_dim=32, flow_res=64)
SMOKE_INPAINTER = dict(widths=(8, 16, 24, 32, 32), blocks=1, cond_dim=32, id_dim=32, id_width=8)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="train the pose editor (PAS + inpainter)")
    p.add_argument("--shards", default=".cache/shards")
    p.add_argument("--ckpt", default=".cache/ckpt/pose")
    p.add_argument("--out", default="out/pose")
    p.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget of this invocation")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many total steps (0 = budget only)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--smoke", action="store_true", help="tiny nets and data, 3 steps (CPU check)")
    p.add_argument("--no-sampler", action="store_true", help="ablation: no PAS, the inpainter gets I_tf")
    p.add_argument("--end-to-end", action="store_true", help="let the inpainter's losses reach the sampler")
    p.add_argument("--batch", type=int, default=16, help="pairs per step (plus as many reconstructions, occluded)")
    p.add_argument("--pretrain-steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-d", type=float, default=1e-4)
    p.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.999))
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--occ-p", type=float, default=0.8, help="fraction of S samples with occluders")
    p.add_argument("--no-colour-match", action="store_true")
    # sampler
    p.add_argument("--w-pix", type=float, default=1.0)
    p.add_argument("--w-recon", type=float, default=0.1)
    p.add_argument("--w-seg", type=float, default=1.0)
    p.add_argument("--w-per", type=float, default=1.0)
    p.add_argument("--w-tv", type=float, default=1.0)
    p.add_argument("--w-flow", type=float, default=1.0)
    p.add_argument("--w-mask", type=float, default=0.1)
    p.add_argument("--w-lmk", type=float, default=0.1, help="landmark correspondence of the grid, per pixel")
    # inpainter
    p.add_argument("--w-recon-g", type=float, default=0.1)
    p.add_argument("--w-occ", type=float, default=1.0)
    p.add_argument("--w-id", type=float, default=1.0)
    p.add_argument("--w-adv", type=float, default=1.0)
    p.add_argument("--w-fm", type=float, default=-1.0, help="D feature matching (-1: 1 when no identity net, else 0)")
    p.add_argument("--w-distill", type=float, default=1.0)
    p.add_argument("--arcface", default=None, help="MobileFaceNet safetensors (identity / perceptual losses)")
    p.add_argument("--eval-pairs", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default="", help="folder with exported pose-sampler/ and pose-inpainter/ to start from "
                   "when --ckpt holds no state (fresh discriminator and Adam; the pre-training phase is skipped)")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------- losses

def masked_l1(x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return ((x - y).abs() * m).sum() / (m.sum() * x.shape[1] / m.shape[1]).clamp(min=1.0)


def tv2(x: torch.Tensor) -> torch.Tensor:
    """Squared-difference total variation (thesis Eq. 3.7), mean over pixels."""
    return ((x[..., 1:, :] - x[..., :-1, :]) ** 2).mean() + ((x[..., :, 1:] - x[..., :, :-1]) ** 2).mean()


def tv1(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def dice(pred: torch.Tensor, tgt: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Thesis Eq. 3.3: sum over classes of 1 - 2|P n T| / (|P| + |T|), mean over the batch."""
    inter = (pred * tgt).sum((2, 3))
    return (1 - (2 * inter + eps) / (pred.sum((2, 3)) + tgt.sum((2, 3)) + eps)).sum(1).mean()


LMK_POINTS = list(range(17, 68))  # landmarks with a real correspondence (the jaw contour is a silhouette)


def landmark_flow_error(grid: torch.Tensor, tgt: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """Mean distance (px) between where the grid samples at the target landmarks and the input's landmarks."""
    size = grid.shape[1]
    t = (2 * tgt[:, LMK_POINTS, :2].float() + 1) / size - 1                              # grid_sample units
    at = F.grid_sample(grid.permute(0, 3, 1, 2).float(), t[:, None], mode="bilinear", padding_mode="border",
                       align_corners=False)[:, :, 0].transpose(1, 2)                     # [N, K, 2]
    px = ((at + 1) * size - 1) / 2
    return (px - src[:, LMK_POINTS, :2].float()).norm(dim=-1).mean()


def face_region(maps: torch.Tensor, px: int = 3) -> torch.Tensor:
    """Landmark maps [N, C, H, W] -> soft face region [N, 1, H, W] (all classes), dilated by px."""
    m = maps.sum(1, keepdim=True).clamp(0, 1)
    return F.max_pool2d(m, 2 * px + 1, 1, px) if px else m


def colour_match(x: torch.Tensor, ref: torch.Tensor, mx: torch.Tensor, mref: torch.Tensor) -> torch.Tensor:
    """x with its per-channel mean/std inside mx matched to ref's inside mref (std ratio clamped to [0.5, 2])."""
    def moments(img, m):
        w = m / m.sum((2, 3), keepdim=True).clamp(min=1.0)
        mu = (img * w).sum((2, 3), keepdim=True)
        return mu, (((img - mu) ** 2) * w).sum((2, 3), keepdim=True).clamp(min=1e-6).sqrt()
    mu_x, sd_x = moments(x, mx)
    mu_r, sd_r = moments(ref, mref)
    return ((x - mu_x) * (sd_r / sd_x).clamp(0.5, 2.0) + mu_r).clamp(0, 1)


class FaceFeatures:
    """MobileFaceNet (training-only, frozen) as identity loss, perceptual feature extractor and distillation target."""

    LAYERS = (4, 11, 14)  # bottleneck indices: 28x24, 14x12, 7x6 (+ conv2, 7x6x512)

    def __init__(self, loss):
        self.loss = loss  # train.mobilefacenet.IdentityLoss

    def feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        net = self.loss.net
        h = net.dw_conv1(net.conv1(self.loss.warp(x)))
        out = []
        for i, blk in enumerate(net.blocks):
            h = blk(h)
            if i in self.LAYERS:
                out.append(h)
        out.append(net.conv2(h))
        return out

    def perceptual(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.feats(x)
        with torch.no_grad():
            fy = self.feats(y)
        return sum((a.float() - b.float()).abs().mean() / b.float().abs().mean().clamp(min=1e-3)
                   for a, b in zip(fx, fy)) / len(fx)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.loss.embed(x)

    def identity(self, x: torch.Tensor, y_emb: torch.Tensor) -> torch.Tensor:
        return self.loss(x, y_emb).mean()


def load_face_features(path: str | None, dev) -> FaceFeatures | None:
    try:
        from train.mobilefacenet import IdentityLoss, load_mobilefacenet
        net = load_mobilefacenet(path, device=dev)
    except (ImportError, FileNotFoundError, OSError) as e:
        print(f"identity / perceptual losses off: {e}", flush=True)
        return None
    return FaceFeatures(IdentityLoss(net).to(dev))


def grey_outside(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return x * m + 0.5 * (1 - m)


# ------------------------------------------------------------------------------------------------ training

class Run:
    """Nets, optimisers and counters of one training job."""

    def __init__(self, args, dev: torch.device):
        self.args, self.dev = args, dev
        self.variant = "pose-nosampler" if args.no_sampler else "pose"
        meta = self.load_meta()
        cfg_s = meta["sampler_config"] if meta else (SMOKE_SAMPLER if args.smoke else {})
        cfg_g = meta["inpainter_config"] if meta else (SMOKE_INPAINTER if args.smoke else {})
        self.S = None if args.no_sampler else PixelAttentionSampler(**(cfg_s or {})).to(dev)
        self.G = PoseInpainter(**cfg_g).to(dev)
        self.D = ProjectionDiscriminator(SIZE, width=16 if args.smoke else 64).to(dev)
        self.S_ema = None if self.S is None else copy.deepcopy(self.S).eval().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        betas = tuple(args.betas)
        self.opt_s = None if self.S is None else torch.optim.Adam(self.S.parameters(), args.lr, betas=betas)
        self.opt_g = torch.optim.Adam(self.G.parameters(), args.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), args.lr_d, betas=betas)
        self.step, self.nimg, self.train_seconds, self.sessions = 0, 0, 0.0, 0
        if meta:
            t = load_file(self.path(".safetensors"))
            for name, mod in self.modules():
                mod.load_state_dict({k[len(name) + 1:]: v for k, v in t.items() if k.startswith(name + "/")})
            for name, opt in self.optimizers():
                load_opt(opt, t, name)
            self.step, self.nimg = meta["step"], meta["nimg"]
            self.train_seconds, self.sessions = meta["train_seconds"], meta["sessions"]
            print(f"resumed {self.variant} from {args.ckpt}: step {self.step}, {self.nimg / 1000:.1f} kimg", flush=True)
        elif args.init:
            self.warm_start(args.init)
        self.sessions += 1
        self.faces = load_face_features(args.arcface, dev) if (args.w_id > 0 or args.w_per > 0 or args.w_distill > 0) \
            else None
        self.w_fm = args.w_fm if args.w_fm >= 0 else (0.0 if self.faces is not None else 1.0)
        self.amp = dict(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")

    def warm_start(self, folder: str):
        """Nets and EMAs from an exported model (e.g. the bundled checkpoints/); D and Adam start fresh."""
        names = [("G", "pose-inpainter-nosampler" if self.S is None else "pose-inpainter")]
        if self.S is not None:
            names.append(("S", "pose-sampler"))
        for attr, sub in names:
            src = type(getattr(self, attr)).from_pretrained(os.path.join(folder, sub), device=self.dev)
            for net in (getattr(self, attr), getattr(self, attr + "_ema")):
                net.load_state_dict({k: v.float() for k, v in src.state_dict().items()})
        self.step = self.args.pretrain_steps  # the inpainter is trained already: straight to the joint phase
        print(f"warm start of {self.variant} from {folder} (fresh discriminator and Adam)", flush=True)

    def modules(self):
        mods = [("G", self.G), ("G_ema", self.G_ema), ("D", self.D)]
        if self.S is not None:
            mods += [("S", self.S), ("S_ema", self.S_ema)]
        return mods

    def optimizers(self):
        opts = [("opt_g", self.opt_g), ("opt_d", self.opt_d)]
        if self.opt_s is not None:
            opts.append(("opt_s", self.opt_s))
        return opts

    def path(self, ext: str) -> str:
        return os.path.join(self.args.ckpt, self.variant + ext)

    def load_meta(self) -> dict | None:
        if not (os.path.exists(self.path(".json")) and os.path.exists(self.path(".safetensors"))):
            return None
        with open(self.path(".json")) as f:
            return json.load(f)

    def save(self) -> None:
        os.makedirs(self.args.ckpt, exist_ok=True)
        tensors = {}
        for name, mod in self.modules():
            tensors.update({f"{name}/{k}": v.detach().cpu().contiguous() for k, v in mod.state_dict().items()})
        for name, opt in self.optimizers():
            tensors.update(opt_tensors(opt, name))
        save_file(tensors, self.path(".safetensors.tmp"))
        os.replace(self.path(".safetensors.tmp"), self.path(".safetensors"))
        meta = dict(step=self.step, nimg=self.nimg, train_seconds=self.train_seconds, sessions=self.sessions,
                    sampler_config=None if self.S is None else self.S.config, inpainter_config=self.G.config,
                    args={k: v for k, v in vars(self.args).items()})
        with open(self.path(".json.tmp"), "w") as f:
            json.dump(meta, f, indent=2)
        os.replace(self.path(".json.tmp"), self.path(".json"))

    # ------------------------------------------------------------------------------------------ one step
    def train_step(self, data: Data) -> dict:
        a, dev = self.args, self.dev
        P = a.batch
        phase2 = self.step >= a.pretrain_steps
        with torch.no_grad():
            pb = data.pair_batch(data.sample_pairs(P))
            ob = data.occ_batch(torch.randint(0, len(data.s_img), (P,), device=dev), p=a.occ_p)
            A, B = pb["A"], pb["B"]
            maps_a, maps_b = region_maps(pb["lm_a"], SIZE), region_maps(pb["lm_b"], SIZE)
            face_a, face_b = face_region(maps_a), face_region(maps_b)
            Bc = B if a.no_colour_match else colour_match(B, A, face_b, face_a)
            emb_b = self.faces.embed(B) if (self.faces is not None and a.w_id > 0 and phase2) else None
            informed = (torch.rand(P, 1, 1, 1, device=dev) < 0.5).float()
            m_occ = 1 - ob["hole"] * informed                     # half the occluded inputs say where the hole is
        logs = {}
        zero = A.new_zeros(())

        # ---------------------------------------------------------------- sampler (PAS)
        loss_s = zero
        if self.S is not None:
            with torch.autocast(**self.amp):
                out = self.S(torch.cat([A, A]), torch.cat([pb["lm_a"], pb["lm_a"]]), torch.cat([pb["l3_b"], pb["l3_a"]]),
                             with_maps=True)
            Jw, Iw = out["warped"][:P], out["warped"][P:]
            l_pix = masked_l1(Jw, Bc, face_b) + a.w_recon * (Iw - A).abs().mean()
            wm, tm = out["warped_maps"][:P], out["tgt_maps"][:P]
            l_seg = 0.5 * (dice(wm, tm) + dice(F.avg_pool2d(wm, 4), F.avg_pool2d(tm, 4)))
            l_lmk = landmark_flow_error(out["grid"], torch.cat([pb["l3_b"], pb["l3_a"]]),
                                        torch.cat([pb["lm_a"], pb["lm_a"]]))
            l_tv = tv2(Jw) + tv2(Iw)
            l_flow = tv1(out["offsets"].float())
            with torch.no_grad():
                t_j = torch.exp(-(Jw - Bc).abs().mean(1, keepdim=True) / 0.1) * face_b + (1 - face_b)
                w_j = face_b
                target = torch.cat([t_j, torch.ones_like(t_j)])
                weight = torch.cat([w_j, torch.ones_like(w_j)]) * out["valid"]
            l_mask = F.binary_cross_entropy_with_logits(out["mask_logit"], target, weight=weight, reduction="sum") \
                / weight.sum().clamp(min=1.0)
            l_per = zero
            if self.faces is not None and a.w_per > 0:
                with torch.autocast(**self.amp):
                    l_per = self.faces.perceptual(grey_outside(Jw, face_b), grey_outside(Bc, face_b))
            loss_s = a.w_pix * l_pix + a.w_seg * l_seg + a.w_per * l_per + a.w_tv * l_tv + a.w_flow * l_flow \
                + a.w_mask * l_mask + a.w_lmk * l_lmk
            logs.update(s_pix=l_pix, s_seg=l_seg, s_per=l_per, s_tv=l_tv, s_flow=l_flow, s_mask=l_mask, s_lmk=l_lmk)
            grad = a.end_to_end
            j_in = (Jw if grad else Jw.detach(), out["mask"][:P] if grad else out["mask"][:P].detach())
            i_in = (Iw if grad else Iw.detach(), out["mask"][P:] if grad else out["mask"][P:].detach())
        else:
            with torch.no_grad():
                pre = preprocess(A, pb["lm_a"], pb["l3_b"])
            j_in, i_in = (pre["aligned"], pre["aligned_mask"]), (A, torch.ones_like(A[:, :1]))

        # ---------------------------------------------------------------- inpainter inputs
        groups = (["J"] if phase2 else []) + ["I", "O"]
        ins = {"J": (*j_in, pb["l3_b"], A, B, pb["lm_b"]), "I": (*i_in, pb["l3_a"], A, A, pb["lm_a"]),
               "O": (ob["S_occ"], m_occ, ob["l3"], ob["S_occ"], ob["S"], ob["lm"])}
        img = torch.cat([ins[k][0] for k in groups])
        msk = torch.cat([ins[k][1] for k in groups])
        tgt3 = torch.cat([ins[k][2] for k in groups])
        src = torch.cat([ins[k][3] for k in groups])
        real = torch.cat([ins[k][4] for k in groups])
        with torch.no_grad():
            tmaps = torch.cat([maps_b if k == "J" else maps_a if k == "I" else region_maps(ins[k][5], SIZE)
                               for k in groups])
        with torch.autocast(**self.amp):
            id_feat = self.G.identity(src)
            fake = self.G(img, msk, tgt3, src, tgt_maps=tmaps, id_feat=id_feat).float()
        parts = dict(zip(groups, fake.split(P)))

        # ---------------------------------------------------------------- discriminator step
        self.D.requires_grad_(True)
        with torch.autocast(**self.amp):
            score, patch, feats = self.D(torch.cat([real, fake.detach()]), torch.cat([tgt3, tgt3]))
        n = len(real)
        loss_d = 0.5 * (F.relu(1 - score[:n].float()).mean() + F.relu(1 + score[n:].float()).mean()
                        + F.relu(1 - patch[:n].float()).mean() + F.relu(1 + patch[n:].float()).mean())
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)

        # ---------------------------------------------------------------- inpainter losses
        with torch.autocast(**self.amp):
            g_score, g_patch, g_feats = self.D(fake, tgt3)
        l_adv = -0.5 * (g_score.float().mean() + g_patch.float().mean())
        l_fm = zero
        if self.w_fm > 0:
            l_fm = sum(F.l1_loss(f.float(), r[:n].detach().float()) for f, r in zip(g_feats, feats)) / len(feats)
        l_pix = a.w_recon_g * (parts["I"] - A).abs().mean() + a.w_occ * (parts["O"] - ob["S"]).abs().mean()
        l_tv = sum(tv2(v) for v in parts.values())
        l_per = l_id = l_distill = zero
        if "J" in parts:
            l_pix = l_pix + masked_l1(parts["J"], Bc, face_b)
        if self.faces is not None:
            with torch.autocast(**self.amp):
                if a.w_per > 0:
                    l_per = self.faces.perceptual(parts["O"], ob["S"])
                    if "J" in parts:
                        l_per = l_per + self.faces.perceptual(grey_outside(parts["J"], face_b), grey_outside(Bc, face_b))
                if emb_b is not None and "J" in parts:
                    l_id = self.faces.identity(parts["J"], emb_b)
                if a.w_distill > 0:
                    with torch.no_grad():
                        tgt_emb = self.faces.embed(torch.cat([A if k != "O" else ob["S"] for k in groups]))
                    pred = F.normalize(self.G.distill_head(id_feat).float(), dim=1)
                    l_distill = (1 - (pred * tgt_emb).sum(1)).mean()
        loss_g = l_pix + a.w_per * l_per + a.w_id * l_id + a.w_tv * l_tv + a.w_adv * l_adv + self.w_fm * l_fm \
            + a.w_distill * l_distill
        logs.update(d=loss_d, g_pix=l_pix, g_per=l_per, g_id=l_id, g_tv=l_tv, g_adv=l_adv, g_fm=l_fm, g_distill=l_distill)

        # ---------------------------------------------------------------- generator step (sampler + inpainter)
        self.opt_g.zero_grad(set_to_none=True)
        if self.opt_s is not None:
            self.opt_s.zero_grad(set_to_none=True)
        (loss_s + loss_g).backward()
        torch.nn.utils.clip_grad_norm_(self.G.parameters(), 10.0)
        self.opt_g.step()
        if self.opt_s is not None:
            torch.nn.utils.clip_grad_norm_(self.S.parameters(), 10.0)
            self.opt_s.step()
        with torch.no_grad():
            decay = min(a.ema, (1 + self.step) / (10 + self.step))
            pairs = [(self.G_ema, self.G)] + ([(self.S_ema, self.S)] if self.S is not None else [])
            for ema, net in pairs:
                for pe, pm in zip(ema.parameters(), net.parameters()):
                    pe.lerp_(pm, 1 - decay)
                for be, bm in zip(ema.buffers(), net.buffers()):
                    be.copy_(bm)
        self.step += 1
        self.nimg += P * (3 if phase2 else 2)
        return {k: v.detach() for k, v in logs.items()}


# ------------------------------------------------------------------------------------------- eval/export

def dyaw_bin(d: float) -> str:
    return "dyaw<10" if d < 10 else "dyaw10-20" if d < 20 else "dyaw20-30" if d < 30 else "dyaw>=30"


@torch.no_grad()
def evaluate(run: Run, data: Data, batch: int = 32) -> dict:
    """Val pairs (A -> B, same identity, fixed draw): output vs the real photo B.

    l1 / ssim: whole image; *_face: inside B's landmark face region (dilated 3 px); l1_face_cm: against B with
    A's face colours (lighting / white balance discounted); dice: landmark maps carried by the warp vs B's maps
    (geometry of the warp; `dice_input` = A's half-face aligned maps, the no-sampler baseline); lmk_px: mean
    distance (px) between where the warp fetches B's landmarks 17-67 and where they are in A (`lmk_px_input`: the
    half-face alignment alone) -- the landmark error of the warp, no detector needed; id_cos:
    MobileFaceNet cosine to B (the training-only net, a diagnostic, not the project's identity judge).
    `input_*`: the unedited input A vs B. Also self-reconstruction (A -> A) and occlusion removal (val faces,
    seeded occluders)."""
    S, G, faces = run.S_ema, run.G_ema, run.faces
    rows = []
    for i in range(0, len(data.val_pairs), batch):
        pb = data.pair_batch(data.val_pairs[i:i + batch], flip=False)
        A, B = pb["A"], pb["B"]
        out = edit_pose(S, G, A, pb["lm_a"], pb["l3_b"])
        maps_a, maps_b = region_maps(pb["lm_a"], SIZE), region_maps(pb["lm_b"], SIZE)
        fb, fa = face_region(maps_b), face_region(maps_a)
        Bc = colour_match(B, A, fb, fa)
        pre = preprocess(A, pb["lm_a"], pb["l3_b"], half_face=S.half_face if S is not None else True)
        pre_maps = region_maps(pre["landmarks"], SIZE)
        pre_grid = affine_grid_px(invert_affine(pre["matrix"]), SIZE)
        so = None if S is None else S(A, pb["lm_a"], pb["l3_b"], with_maps=True)
        warped_maps = pre_maps if so is None else so["warped_maps"]
        grid_used = pre_grid if so is None else so["grid"]
        y = out["output"]
        per = lambda f: f.flatten(1).mean(1)  # noqa: E731

        def fl1(x, t, m):
            return ((x - t).abs() * m).sum((1, 2, 3)) / (3 * m.sum((1, 2, 3))).clamp(min=1)

        def fssim(x, t, m):
            return (ssim_map(x, t) * m).sum((1, 2, 3)) / m.sum((1, 2, 3)).clamp(min=1)

        def lmk_each(g, t3, s2):
            return torch.stack([landmark_flow_error(g[j:j + 1], t3[j:j + 1], s2[j:j + 1]) for j in range(len(g))])

        def dice_each(p, t):
            inter = (p * t).sum((2, 3))
            return (2 * inter + 1) / (p.sum((2, 3)) + t.sum((2, 3)) + 1)

        r = dict(l1=per((y - B).abs()), l1_face=fl1(y, B, fb), l1_face_cm=fl1(y, Bc, fb), ssim=per(ssim_map(y, B)),
                 ssim_face=fssim(y, B, fb), warped_l1_face_cm=fl1(out["warped"], Bc, fb),
                 dice=dice_each(warped_maps, maps_b).mean(1), dice_input=dice_each(pre_maps, maps_b).mean(1),
                 lmk_px=lmk_each(grid_used, pb["l3_b"], pb["lm_a"]), lmk_px_input=lmk_each(pre_grid, pb["l3_b"], pb["lm_a"]),
                 input_l1_face_cm=fl1(A, Bc, fb), input_ssim_face=fssim(A, B, fb),
                 dyaw=(pb["pose_a"][:, 0] - pb["pose_b"][:, 0]).abs())
        if faces is not None:
            eb = faces.embed(B)
            r["id_cos"] = (faces.embed(y) * eb).sum(1)
            r["input_id_cos"] = (faces.embed(A) * eb).sum(1)
        rec = edit_pose(S, G, A, pb["lm_a"], pb["l3_a"])["output"]
        r["recon_l1"] = per((rec - A).abs())
        rows.append(r)
    cat = {k: torch.cat([r[k] for r in rows]).float().cpu() for k in rows[0]} if rows else {}
    res: dict = {"val_pairs": int(len(data.val_pairs))}
    keys = [k for k in cat if k != "dyaw"]
    for k in keys:
        res[k] = round(float(cat[k].mean()), 4)
    if rows:
        res["recon_psnr"] = round(float(-10 * torch.log10(((cat["recon_l1"]) ** 2).mean().clamp(min=1e-10))), 2)
        bins: dict[str, list[int]] = {}
        for i, d in enumerate(cat["dyaw"].tolist()):
            bins.setdefault(dyaw_bin(d), []).append(i)
        res["by_dyaw"] = {b: {"n": len(ix), **{k: round(float(cat[k][ix].mean()), 4) for k in
                                               ("l1_face_cm", "ssim_face", "dice", "dice_input", "lmk_px",
                                                "lmk_px_input", "input_l1_face_cm")
                                               + (("id_cos", "input_id_cos") if "id_cos" in cat else ())}}
                          for b, ix in sorted(bins.items())}
    # occlusion removal on val faces (seeded occluders, hole given)
    if len(data.sv_img):
        g = torch.Generator().manual_seed(1234)
        l1h = l1a = npx = 0.0
        n_img = 0
        for i in range(0, min(len(data.sv_img), 128), batch):
            idx = torch.arange(i, min(i + batch, len(data.sv_img), 128), device=run.dev)
            ob = data.occ_batch(idx, p=1.0, g=g, flip=False, val=True)
            y = G(ob["S_occ"], 1 - ob["hole"], ob["l3"], ob["S_occ"])
            l1h += float(((y - ob["S"]).abs() * ob["hole"]).sum() / 3)
            npx += float(ob["hole"].sum())
            l1a += float((y - ob["S"]).abs().mean((1, 2, 3)).sum())
            n_img += len(idx)
        res["occ_hole_l1"] = round(l1h / max(npx, 1), 4)
        res["occ_l1"] = round(l1a / max(n_img, 1), 4)
    return res


def to_png(rows: list[list[torch.Tensor]], path: str) -> None:
    from PIL import Image

    img = torch.cat([torch.cat([t.expand(3, -1, -1) for t in row], 2) for row in rows], 1)
    Image.fromarray((img.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()).save(path)


@torch.no_grad()
def grid(run: Run, data: Data, path: str, rows: int = 8) -> None:
    """One val pair per row: input A | target photo B | half-face aligned I_tf | warped | validity mask | output."""
    pb = data.pair_batch(data.val_pairs[:rows], flip=False)
    out = edit_pose(run.S_ema, run.G_ema, pb["A"], pb["lm_a"], pb["l3_b"])
    cols = [pb["A"], pb["B"], out["aligned"], out["warped"], out["mask"], out["output"]]
    to_png([[c[r] for c in cols] for r in range(len(pb["A"]))], path)


@torch.no_grad()
def sweep(run: Run, data: Data, path: str, rows: int = 4, yaws=(-30, -15, 0, 15, 30)) -> None:
    """Val inputs rotated to absolute yaws (pitch kept) with template-rotated landmarks; two rows per input:
    input | warped at each yaw, then input | output at each yaw."""
    idx = data.val_pairs[:rows, 0]
    A, lm, l3, pose = data.img[idx].float() / 255, data.lm[idx], data.lm3d[idx], data.pose[idx]
    warped, outs = [A], [A]
    for y in yaws:
        tgt, _ = target_landmarks(l3, pose, torch.full_like(pose[:, 0], float(y)), pose[:, 1], SIZE)
        o = edit_pose(run.S_ema, run.G_ema, A, lm, tgt)
        warped.append(o["warped"])
        outs.append(o["output"])
    to_png([[c[r] for c in cols] for r in range(len(A)) for cols in (warped, outs)], path)


def n_params(m) -> float:
    return sum(p.numel() for p in m.parameters()) / 1e6


def model_card(kind: str, run: Run, metrics: dict, data: Data, minutes: float) -> str:
    a = run.args
    sampler = run.S_ema is not None
    if kind == "sampler":
        what = f"""Pixel Attention Sampler ({n_params(run.S_ema):.2f}M parameters): from an aligned 128 px face, its 68
landmarks and the target's 3D landmarks, predicts a dense sampling grid (offsets from the half-face
similarity alignment, decoded at {run.S_ema.config['flow_res']} px), the warped face and a validity mask. Conv +
conditional instance norm on the target landmarks + self-attention (`core/models/pose.py`)."""
    else:
        what = f"""Pose inpainter ({n_params(run.G_ema):.2f}M parameters): gated-conv U-Net whose decoder is modulated
(conditional instance norm) by the target 3D landmarks and an identity vector of the input photo; it fills
holes and removes sampling artefacts of the {'sampler' if sampler else 'half-face aligned input (NO sampler: the thesis ablation)'}."""
    m = metrics
    metric_line = (f"val pairs ({m.get('val_pairs')} same-identity pairs, median |dyaw| "
                   f"{data.pair_stats['val_pairs']['median']} deg): face L1 (colour-matched) {m.get('l1_face_cm')}, "
                   f"face SSIM {m.get('ssim_face')} (input: {m.get('input_l1_face_cm')} / {m.get('input_ssim_face')}), "
                   f"landmark-map Dice of the warp {m.get('dice')} (no warp {m.get('dice_input')}), "
                   f"landmark error of the warp {m.get('lmk_px')} px (no warp {m.get('lmk_px_input')}), "
                   f"self-reconstruction L1 {m.get('recon_l1')}")
    return f"""---
license: other
license_name: non-commercial-research
tags: [face-pose-editing, pixel-attention-sampling, celeba]
---
# FaceLab pose editor: {kind}

{what}
After Yin (2022), PhD thesis ch. 3 ("Pixel sampling for style preserving face pose editing"). Used together:
`core.models.pose.edit_pose(sampler, inpainter, image, landmarks, target_landmarks3d)`; target landmarks for a
yaw / pitch: `core.models.pose.target_landmarks`.

## Data
CelebA identities (celeba_id_128: {data.n_train_id} training photos of {data.n_train_people} identities; pairs of one person,
weighted towards yaw differences), CelebAMask-HQ faces with synthetic occluders for self-reconstruction.
128 px canonical crops (core.face alignment).

## Terms
Non-commercial research use only (CelebA / CelebAMask-HQ). The identity, perceptual and distillation losses
used a MobileFaceNet (CASIA-WebFace) at training time only; it is not part of this model.

## Metrics
{metric_line}. Full numbers: `config.json` -> metrics.

Training: {run.step} steps ({run.nimg / 1000:.1f} kimg, {run.train_seconds / 60:.0f} min, {run.sessions} session(s)),
batch {a.batch} pairs + {a.batch} reconstructions + {a.batch} occluded faces, Adam {a.lr} betas {tuple(a.betas)},
inpainter pre-training {a.pretrain_steps} steps, EMA weights, fp16.

## Retrain
    python -m train.pose --shards .cache/shards --ckpt .cache/ckpt/pose --out out/pose --minutes {minutes:.0f} \\
        --device cuda --arcface /root/weights/mobilefacenet_casia/model.safetensors{" --no-sampler" if not sampler else ""}
"""


def main(argv=None) -> None:
    args = parse_args(argv)
    t_start = time.time()
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    if args.smoke:
        args.batch, args.pretrain_steps, args.eval_pairs = 2, 1, 8
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    data = Data(args.shards, dev, smoke=args.smoke, eval_pairs=args.eval_pairs)
    print(data.describe(), flush=True)
    run = Run(args, dev)
    print(f"{run.variant}: sampler {n_params(run.S) if run.S is not None else 0:.2f}M, inpainter {n_params(run.G):.2f}M, "
          f"D {n_params(run.D):.2f}M; identity/perceptual {'on' if run.faces is not None else 'off'}, "
          f"D feature matching x{run.w_fm}; batch {args.batch}; pretrain steps {args.pretrain_steps}", flush=True)
    end = t_start + args.minutes * 60 - (5 if args.smoke else 60)
    last_log = last_ckpt = t_loop = time.time()
    sums, n, k = {}, 0, 0
    while True:
        if args.smoke and k >= 3:
            break
        if not args.smoke and time.time() >= end:
            break
        if args.max_steps and run.step >= args.max_steps:
            break
        t0 = time.time()
        logs = run.train_step(data)
        run.train_seconds += time.time() - t0
        k += 1
        n += 1
        for key, v in logs.items():
            sums[key] = sums.get(key, 0) + v
        if time.time() - last_log > 30 or args.smoke:
            dt = time.time() - last_log
            print(f"step {run.step} kimg {run.nimg / 1000:.1f} {n / max(dt, 1e-6):.2f} it/s "
                  + " ".join(f"{key} {float(v) / n:.4f}" for key, v in sums.items()), flush=True)
            sums, n, last_log = {}, 0, time.time()
        if time.time() - last_ckpt > 240:
            run.save()
            last_ckpt = time.time()
    run.save()
    print(f"trained {k} steps this session in {time.time() - t_loop:.0f}s; evaluating", flush=True)
    for m in (run.S_ema, run.G_ema):
        if m is not None:
            m.eval()
    metrics = evaluate(run, data)
    metrics.update(step=run.step, kimg=round(run.nimg / 1000, 2), pairs=data.pair_stats, variant=run.variant)
    print(json.dumps(metrics), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{run.variant}_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    grid(run, data, os.path.join(args.out, f"{run.variant}_grid.png"))
    sweep(run, data, os.path.join(args.out, f"{run.variant}_sweep.png"))
    summary = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    files = []
    if run.S_ema is not None:
        files += run.S_ema.save_pretrained(os.path.join(args.out, "pose-sampler"),
                                           card=model_card("sampler", run, metrics, data, args.minutes),
                                           extra_config={"metrics": summary, "training": {"step": run.step}})
    g_name = "pose-inpainter" if run.S_ema is not None else "pose-inpainter-nosampler"
    files += run.G_ema.save_pretrained(os.path.join(args.out, g_name),
                                       card=model_card("inpainter", run, metrics, data, args.minutes),
                                       extra_config={"metrics": summary, "training": {"step": run.step}})
    print(f"wrote {args.out}: {files}; done in {time.time() - t_start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
