"""Training / validation data of the pose editor (train/pose.py), built from shards only (no dlib, no OpenCV).

    python -m train.pose_data --shards .cache/shards      # print the pair statistics (yaw differences)

Sources (all on the training device as uint8):
 - `celeba_id_128_*`: aligned 128 px photos of 180 CelebA identities (~30 each; split 0 train / 1 val,
   identities disjoint). Pairs (A, B) = two different photos of one identity, sampled with weight
   5 + min(|yaw_A - yaw_B|, 45) so that pairs with a pose change dominate. Validation pairs: a fixed,
   seeded draw from the val identities with the same weighting.
 - `celebamask_256_*` (or `celebamask_128_*` when no 256 px shards exist): faces + CelebAMask-HQ labels for
   self-reconstruction and synthetic occlusion. Occluders (train/occluders.py, tuned at 256 px) are pasted
   at 256 px, then image, clean target and hole are area-downscaled to 128 px. Face-mask donors come from
   `masked_256_*` when present.
Every face gets 3D landmarks from `core.models.pose.fit_template` (its 2D landmarks + the shard's yaw /
pitch); poses below are in the crop's frame (yaw, pitch, roll fitted in the crop).
"""
from __future__ import annotations

import argparse
import glob
import os

import numpy as np
import torch
import torch.nn.functional as F

from core.models.pose import fit_template, flip_landmarks

SIZE = 128


def pair_weight(dyaw: torch.Tensor) -> torch.Tensor:
    """Sampling weight of a pair from its absolute yaw difference (degrees)."""
    return 5.0 + dyaw.clamp(max=45.0)


def _read(paths: list[str], take=None) -> dict[str, np.ndarray]:
    """Concatenate shard parts without decoding, then decode only the rows `take(meta)` selects."""
    from train.shards import decode_jpeg, read_shard

    parts = [read_shard(p, decode=False) for p in paths]
    if not parts:
        raise FileNotFoundError(f"no shards {paths}")
    n_per = [len(p["offsets"]) - 1 for p in parts]
    keys = [k for k in parts[0] if k not in ("jpeg", "offsets")]
    meta = {k: np.concatenate([p[k] for p in parts]) for k in keys}
    rows = np.arange(sum(n_per)) if take is None else np.asarray(take(meta))
    starts = np.concatenate([[0], np.cumsum(n_per)])
    imgs = []
    for r in rows:
        k = int(np.searchsorted(starts, r, side="right") - 1)
        i = r - starts[k]
        off = parts[k]["offsets"]
        imgs.append(decode_jpeg(parts[k]["jpeg"][off[i]:off[i + 1]]))
    out = {k: v[rows] for k, v in meta.items()}
    out["images"] = np.stack(imgs)
    return out


def _paths(root: str, source: str, size: int) -> list[str]:
    return sorted(glob.glob(os.path.join(root, f"{source}_{size}_*.npz")))


def pairs_of(identity: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """All ordered pairs (i, j), i != j, of rows `index` with the same identity -> [P, 2] row indices."""
    ids = identity[index]
    same = (ids[:, None] == ids[None, :]) & ~torch.eye(len(index), dtype=torch.bool, device=ids.device)
    ij = torch.nonzero(same)
    return index[ij]


def stats(dyaw: torch.Tensor) -> dict:
    q = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], device=dyaw.device)
    v = torch.quantile(dyaw.float(), q).tolist() if len(dyaw) else [0.0] * 5
    return {"n": int(len(dyaw)), "p10": round(v[0], 1), "p25": round(v[1], 1), "median": round(v[2], 1),
            "p75": round(v[3], 1), "p90": round(v[4], 1),
            "frac_gt15": round(float((dyaw > 15).float().mean()) if len(dyaw) else 0.0, 3),
            "frac_gt30": round(float((dyaw > 30).float().mean()) if len(dyaw) else 0.0, 3)}


class Data:
    """Faces, landmarks (2D + fitted 3D), poses, identity pairs and the occluder bank on `dev`."""

    def __init__(self, shards: str, dev: torch.device, smoke: bool = False, eval_pairs: int = 256, seed: int = 1234):
        from train.occluders import OccluderBank

        self.dev = dev
        # ---------------------------------------------------------------- identities
        def take_id(meta):
            sp = meta["split"]
            if smoke:  # two train identities (~60 photos) and the first 24 val photos
                return np.concatenate([np.nonzero(sp == 0)[0][:60], np.nonzero(sp == 1)[0][:24]])
            return np.arange(len(sp))

        d = _read(_paths(shards, "celeba_id", SIZE), take_id)
        self.img = torch.from_numpy(d["images"]).permute(0, 3, 1, 2).contiguous().to(dev)
        self.lm = torch.from_numpy(d["landmarks"]).float().to(dev)
        pose = torch.from_numpy(d["pose"]).float().to(dev)
        self.lm3d, self.pose = fit_template(self.lm, pose[:, 0], pose[:, 1])
        self.identity = torch.from_numpy(d["identity"].astype(np.int64)).to(dev)
        split = torch.from_numpy(d["split"].astype(np.int64)).to(dev)
        tr, va = torch.nonzero(split == 0)[:, 0], torch.nonzero(split == 1)[:, 0]
        self.pairs = pairs_of(self.identity, tr)
        dyaw = (self.pose[self.pairs[:, 0], 0] - self.pose[self.pairs[:, 1], 0]).abs()
        self.pair_w = pair_weight(dyaw)
        val_pairs = pairs_of(self.identity, va)
        g = torch.Generator().manual_seed(seed)
        if len(val_pairs):
            vd = (self.pose[val_pairs[:, 0], 0] - self.pose[val_pairs[:, 1], 0]).abs()
            pick = torch.multinomial(pair_weight(vd).cpu(), min(eval_pairs, len(val_pairs)), replacement=False, generator=g)
            self.val_pairs = val_pairs[pick.to(dev)]
        else:
            self.val_pairs = val_pairs
        sampled = torch.multinomial(self.pair_w.cpu(), 100_000, replacement=True,
                                    generator=torch.Generator().manual_seed(0)).to(dev) if len(self.pairs) else \
            torch.zeros(0, dtype=torch.long, device=dev)
        self.pair_stats = {
            "train_all_pairs": stats(dyaw),
            "train_sampled": stats(dyaw[sampled]) if len(sampled) else stats(dyaw),
            "val_pairs": stats((self.pose[self.val_pairs[:, 0], 0] - self.pose[self.val_pairs[:, 1], 0]).abs()),
        }
        self.n_train_id, self.n_val_id = len(tr), len(va)
        self.n_train_people = int(torch.unique(self.identity[tr]).numel())

        # ---------------------------------------------------------------- CelebAMask-HQ (occlusion, self-recon)
        self.occ_res = 256 if _paths(shards, "celebamask", 256) else SIZE
        paths = _paths(shards, "celebamask", self.occ_res)
        if smoke:
            paths = paths[:1]

        def take_mask(meta):
            sp = meta["split"]
            if smoke:
                return np.concatenate([np.nonzero(sp == 0)[0][:48], np.nonzero(sp == 1)[0][:8]])
            return np.arange(len(sp))

        m = _read(paths, take_mask)
        split = torch.from_numpy(m["split"].astype(np.int64))
        imgs = torch.from_numpy(m["images"]).permute(0, 3, 1, 2).contiguous()
        labs = torch.from_numpy(m["labels"])
        k = SIZE / self.occ_res
        lm = (torch.from_numpy(m["landmarks"]).float() + 0.5) * k - 0.5              # pixel index at 128 px
        mpose = torch.from_numpy(m["pose"]).float()
        lm3d, mpose = fit_template(lm, mpose[:, 0], mpose[:, 1])
        tr, va = torch.nonzero(split == 0)[:, 0], torch.nonzero(split == 1)[:, 0]
        self.s_img, self.s_lab = imgs[tr].to(dev), labs[tr].to(dev)
        self.s_lm, self.s_lm3d, self.s_pose = lm[tr].to(dev), lm3d[tr].to(dev), mpose[tr].to(dev)
        self.sv_img, self.sv_lab = imgs[va].to(dev), labs[va].to(dev)
        self.sv_lm, self.sv_lm3d, self.sv_pose = lm[va].to(dev), lm3d[va].to(dev), mpose[va].to(dev)
        masked = mlm = None
        mp = _paths(shards, "masked", self.occ_res)
        if mp:
            md = _read(mp[:1], lambda meta: np.arange(min(32, len(meta["split"])))) if smoke else _read(mp)
            masked = torch.from_numpy(md["images"]).permute(0, 3, 1, 2).contiguous().to(dev)
            mlm = torch.from_numpy(md["landmarks"]).to(dev)
        self.bank = OccluderBank.build(self.s_img, self.s_lab, masked, mlm,
                                       min_pixels=int(400 * (self.occ_res / 256) ** 2))

    def describe(self) -> str:
        return (f"identities: {self.n_train_id} train / {self.n_val_id} val photos, {len(self.pairs)} train pairs, "
                f"{len(self.val_pairs)} val pairs; celebamask {len(self.s_img)} train / {len(self.sv_img)} val at "
                f"{self.occ_res} px (occluders), masked donors "
                f"{0 if self.bank.masked is None else len(self.bank.masked)}\n"
                f"|dyaw| of pairs: {self.pair_stats}")

    # ------------------------------------------------------------------------------------------- batches
    def sample_pairs(self, n: int) -> torch.Tensor:
        return self.pairs[torch.multinomial(self.pair_w, n, replacement=True)]

    def pair_batch(self, pairs: torch.Tensor, flip: bool = True) -> dict:
        """pairs [P, 2] -> A, B float [P, 3, 128, 128] in [0, 1], lm_a/lm_b [P, 68, 2], l3_a/l3_b [P, 68, 3],
        pose_a/pose_b [P, 3]; with `flip`, each pair is mirrored (both photos) with probability 1/2."""
        a, b = pairs[:, 0], pairs[:, 1]
        out = dict(A=self.img[a].float() / 255, B=self.img[b].float() / 255, lm_a=self.lm[a], lm_b=self.lm[b],
                   l3_a=self.lm3d[a], l3_b=self.lm3d[b], pose_a=self.pose[a], pose_b=self.pose[b])
        if flip:
            on = torch.rand(len(pairs), device=pairs.device) < 0.5
            out = flip_where(out, on)
        return out

    def occ_batch(self, idx: torch.Tensor, p: float = 0.8, g: torch.Generator | None = None, flip: bool = True,
                  val: bool = False) -> dict:
        """CelebAMask faces -> S (clean), S_occ, hole [N, 1, 128, 128] (1 = occluder), lm, l3, pose."""
        from core.labels import FLIP_PERM, OCCLUDER
        from train.occluders import apply_occluders

        img_u8, lab_u8 = (self.sv_img, self.sv_lab) if val else (self.s_img, self.s_lab)
        lm, l3, pose = (self.sv_lm, self.sv_lm3d, self.sv_pose) if val else (self.s_lm, self.s_lm3d, self.s_pose)
        clean, lab = img_u8[idx].float() / 255, lab_u8[idx].long()
        out = dict(lm=lm[idx], l3=l3[idx], pose=pose[idx])
        if flip:
            on = torch.rand(len(idx), device=clean.device) < 0.5
            perm = torch.as_tensor(FLIP_PERM, device=lab.device)
            clean = torch.where(on[:, None, None, None], clean.flip(-1), clean)
            lab = torch.where(on[:, None, None], perm[lab.flip(-1)], lab)
            out = flip_where(out, on, keys=("lm", "l3", "pose"))
        occ, occ_lab = apply_occluders(clean, lab, self.bank, p=p, g=g)
        hole = (occ_lab == OCCLUDER)[:, None].float()
        if self.occ_res != SIZE:
            k = self.occ_res // SIZE
            clean, occ = F.avg_pool2d(clean, k), F.avg_pool2d(occ, k)
            hole = F.max_pool2d(hole, k)
        hole = F.max_pool2d(hole, 3, 1, 1)                                              # 1 px margin
        out.update(S=clean, S_occ=occ, hole=hole)
        return out


def flip_where(batch: dict, on: torch.Tensor, keys=None) -> dict:
    """Mirror the samples where `on`: images (4-D), landmarks (x and left/right indices), poses (yaw, roll)."""
    out = dict(batch)
    for k, v in batch.items():
        if keys is not None and k not in keys:
            continue
        if v.dim() == 4:
            out[k] = torch.where(on[:, None, None, None], v.flip(-1), v)
        elif v.dim() == 3 and v.shape[1] == 68:
            out[k] = torch.where(on[:, None, None], flip_landmarks(v, SIZE), v)
        elif v.dim() == 2 and v.shape[1] == 3:
            out[k] = torch.where(on[:, None], v * torch.tensor([-1.0, 1.0, -1.0], device=v.device), v)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="pair statistics of the pose-editing data")
    ap.add_argument("--shards", default=".cache/shards")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    d = Data(a.shards, torch.device("cpu"), smoke=a.smoke)
    print(d.describe())


if __name__ == "__main__":
    main()
