"""De-occlusion evaluation (Yin 2022, §5.4.3, Table 5.1) on CelebAMask-HQ val faces.

    python -m train.eval_deocclusion [--n 200] [--ckpt DIR] [--noprior-ckpt DIR] [--json OUT] [--grid PNG]
                                     [--real-masked N --real-grid PNG] [--dilate 1,2,3] [--device cuda]

Protocol. `--n` val faces (256 px shards, split == 1, the first n in shard order) are occluded
deterministically (fixed seed, CPU generator: the same set on any machine) in two ways:
 (a) sunglasses: the `eyeglasses` region (class 3, lenses and frame) of a CelebAMask-HQ *training*
     image wearing glasses, darkened to 8-30 % and tinted like sunglasses, moved onto the target's
     eyes by the similarity between the two faces' eye centres (landmarks), 0-12 % larger;
 (b) face masks: the lower face (jaw 2..14 + nose 29) of a photo of a person wearing a face mask
     (the `masked` shard's *val* photos), pasted at the canonical place with a small jitter
     (train.occluders.paste_masks).
The true occlusion mask is every pixel the paste changed (its anti-aliased edge included).

Each occluded face is recovered by: the de-occlusion model through the pipeline (`--ckpt`, default the
bundled "deocclusion"; "ours": core.pipelines.deocclude.inpaint_crops, whose face prior only draws on the
face region), the same model with its own unrestricted mirror prior ("ours, mirror prior":
Inpainter.inpaint), the model trained without the face prior (`--noprior-ckpt`, the thesis's ablation;
skipped when not given) and OpenCV's inpainting (Telea and Navier-Stokes, radius 5). Two masks:
 - "true": the pasted-occluder mask (the thesis's protocol: its baselines got manually labelled masks);
 - "auto": the pipeline's automatic occlusion mask (core.pipelines.deocclude.occlusion_mask: parser +
   landmark face region), with landmarks re-detected by dlib on the occluded crop (the shard's where dlib
   finds no face; the count is reported), i.e. what a user gets with one click.
Metrics inside the true occluded region, output vs the clean original (images in [0, 1]):
 L1 (mean |diff|), SSIM (the SSIM map of the whole image, 11 px Gaussian window, averaged over the
 region), PSNR (MSE over the region's pixels; also over the whole 256 crop, "PSNR crop": the reading under
 which the thesis's 28.9 dB fits its L1 of 0.062), and identity: cosine similarity of dlib's 128-d
 descriptors (core.face, the project's identity judge; the thesis used ArcFace, which we do not ship, so
 absolute values differ: dlib's cosine is ~0.94-0.96 even for the occluded input) of output vs clean,
 both through the clean face's landmarks (no detection on the output).
Also: the IoU of the automatic mask vs the true one (per image, averaged), the IoU of other mask rules
(hair, literal M_m - M_f), a sweep of the automatic mask's dilation for the model, and the automatic mask
on the clean faces (how much of an unoccluded face the pipeline would repaint).
`--real-masked N`: N real photos of people wearing masks (masked_256 val crops) through the automatic
pipeline, as a picture (input | auto mask | cv2 Telea | ours).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from core.labels import ID, OCCLUDER
from core.metrics import psnr_from_mse, ssim_map
from train.occluders import OccluderBank, affine_sample, lower_face_masks, paste_masks, soft_alpha

SEED = 2022
EYEGLASSES = ID["eyeglasses"]
DONOR_MIN_PIXELS = 1500   # a whole pair of glasses at 256 px (fragments excluded)
CHUNK = 16                 # occluders are drawn per chunk of this many images (independent of batch sizes)


# ------------------------------------------------------------------------------------------- occluders

def eye_centres(landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, 68, 2] -> (left eye centre [N, 2], right eye centre [N, 2]) in pixels (image left, image right)."""
    return landmarks[:, 36:42].mean(1), landmarks[:, 42:48].mean(1)


def sunglasses(img: torch.Tensor, landmarks: torch.Tensor, donors: dict[str, torch.Tensor],
               g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste darkened eyeglasses of donor faces over the eyes of img.

    img float [B, 3, S, S] in [0, 1], landmarks [B, 68, 2]; donors: images uint8 [D, 3, S, S], masks bool
    [D, S, S] (the eyeglasses region), landmarks [D, 68, 2]. -> (occluded img, bool mask [B, S, S] of the
    pasted region before anti-aliasing)."""
    b = img.shape[0]
    u = torch.rand((b, 6), generator=g)
    idx = (u[:, 0] * len(donors["images"])).long().clamp(max=len(donors["images"]) - 1)
    d_img = donors["images"][idx].float() / 255
    d_mask = donors["masks"][idx, None].float()
    dl, dr = eye_centres(donors["landmarks"][idx].float())
    tl, tr = eye_centres(landmarks.float())
    dv, tv = dr - dl, tr - tl
    scale = tv.norm(dim=1) / dv.norm(dim=1).clamp(min=1) * (1.0 + 0.12 * u[:, 1])
    angle = torch.atan2(tv[:, 1], tv[:, 0]) - torch.atan2(dv[:, 1], dv[:, 0])
    src = affine_sample(torch.cat([d_img, d_mask], 1), (dl + dr) / 2, (tl + tr) / 2, scale, angle)
    mask = src[:, 3] > 0.5
    # sunglasses: 8-30 % of the donor's brightness (frame and lens texture survive, eyes vanish), tinted
    dark = (0.08 + 0.22 * u[:, 2])[:, None, None, None]
    tint = torch.stack([u[:, 3], u[:, 4], u[:, 5]], 1)[:, :, None, None] * 0.12
    lens = (src[:, :3] * dark + tint).clamp(0, 1)
    a = soft_alpha(mask)
    return img * (1 - a) + lens * a, mask


def glasses_donors(images: np.ndarray, labels: np.ndarray, landmarks: np.ndarray) -> dict[str, torch.Tensor]:
    """Training images wearing whole glasses -> donor dict for `sunglasses`."""
    counts = (labels == EYEGLASSES).reshape(len(labels), -1).sum(1)
    keep = np.flatnonzero(counts >= DONOR_MIN_PIXELS)
    return {"images": torch.from_numpy(images[keep]).permute(0, 3, 1, 2).contiguous(),
            "masks": torch.from_numpy(labels[keep] == EYEGLASSES),
            "landmarks": torch.from_numpy(landmarks[keep])}


def occlude(images: np.ndarray, landmarks: np.ndarray, kind: str, donors, seed: int = SEED
            ) -> tuple[np.ndarray, np.ndarray]:
    """Clean faces uint8 [N, S, S, 3] -> (occluded uint8 [N, S, S, 3], true mask bool [N, S, S]).

    kind "sunglasses" (donors: `glasses_donors`) or "mask" (donors: an OccluderBank with face-mask photos).
    Deterministic: a CPU generator seeded per kind, drawn per chunk of CHUNK images."""
    g = torch.Generator().manual_seed(seed + (0 if kind == "sunglasses" else 1))
    out_i, out_m = [], []
    for i in range(0, len(images), CHUNK):
        img = torch.from_numpy(images[i:i + CHUNK]).permute(0, 3, 1, 2).float() / 255
        lm = torch.from_numpy(landmarks[i:i + CHUNK]).float()
        if kind == "sunglasses":
            occ, mask = sunglasses(img, lm, donors, g)
        elif kind == "mask":
            lab = torch.zeros(img.shape[0], *img.shape[-2:], dtype=torch.long)
            occ, lab = paste_masks(img, lab, donors, torch.ones(img.shape[0], dtype=torch.bool), g)
            mask = lab == OCCLUDER
        else:
            raise ValueError(kind)
        changed = soft_alpha(mask)[:, 0] > 0          # every pixel the paste touched (anti-aliased edge too)
        out_i.append((occ * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
        out_m.append(changed.numpy())
    return np.concatenate(out_i), np.concatenate(out_m)



def mask_bank(images: np.ndarray, landmarks: np.ndarray) -> OccluderBank:
    """Face-mask photos (uint8 [M, S, S, 3]) and their landmarks -> OccluderBank holding only mask donors."""
    s = images.shape[1]
    masked = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    polys, valid = lower_face_masks(torch.from_numpy(landmarks), s)
    return OccluderBank(images=torch.zeros(0, 3, s, s, dtype=torch.uint8),
                        labels=torch.zeros(0, s, s, dtype=torch.uint8), pools={}, masked=masked[valid],
                        masked_masks=polys[valid])


# ------------------------------------------------------------------------------------------- landmarks

def _detect_one(crop: np.ndarray) -> np.ndarray | None:
    from core import face as F

    faces = F.detect_faces(crop)
    if not faces:
        return None
    centre = np.array(crop.shape[1::-1], np.float32) / 2
    return min(faces, key=lambda f: float(np.abs(f.landmarks.mean(0) - centre).sum())).landmarks


def redetect(crops: np.ndarray, fallback: np.ndarray, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """dlib landmarks of each crop (the face nearest the centre), as the pipeline would see the occluded face.

    -> (landmarks [N, 68, 2], found bool [N]); where dlib finds no face, the shard's landmarks stand in."""
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            found = list(pool.map(_detect_one, list(crops), chunksize=4))
    else:
        found = [_detect_one(c) for c in crops]
    ok = np.array([f is not None for f in found])
    lms = np.stack([f if f is not None else fb for f, fb in zip(found, fallback)]).astype(np.float32)
    return lms, ok


# ------------------------------------------------------------------------------------------- methods

@torch.no_grad()
def parse(parser, crops: np.ndarray, dev, batch: int = 16) -> np.ndarray:
    """uint8 crops [N, S, S, 3] -> parser labels [N, S, S] (test-time flip, as the app)."""
    out = []
    for i in range(0, len(crops), batch):
        x = torch.from_numpy(crops[i:i + batch]).to(dev).permute(0, 3, 1, 2).float() / 255
        out.append(parser.predict(x, flip=True).to(torch.uint8).cpu().numpy())
    return np.concatenate(out)


def auto_masks(labels: np.ndarray, landmarks: np.ndarray, dilate: int | None = None, **options) -> np.ndarray:
    """The pipeline's automatic occlusion mask (core.pipelines.deocclude.occlusion_mask) of every crop."""
    from core.pipelines.deocclude import DILATE, occlusion_mask

    d = DILATE if dilate is None else dilate
    return np.stack([occlusion_mask(lab, lm, dilate=d, **options) for lab, lm in zip(labels, landmarks)])


# other mask rules, measured for the IoU only (the pipeline's default is "classes", no hair)
MASK_VARIANTS = {"hair over the inner face": dict(hair=True), "all hair inside M_m": dict(hair="all"),
                 "keep eyeglasses": dict(glasses=False), "literal M_m - M_f": dict(rule="literal"),
                 "literal M_m - M_f, all hair": dict(rule="literal", hair="all")}


@torch.no_grad()
def model_fill(model, crops: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, dev, batch: int = 16,
               prior: str = "face") -> np.ndarray:
    """The pipeline's inpainting (core.pipelines.deocclude.inpaint_crops; prior "face" as the app, or "mirror")."""
    from core.pipelines.deocclude import inpaint_crops

    return np.concatenate([inpaint_crops(crops[i:i + batch], masks[i:i + batch], landmarks[i:i + batch], model,
                                         prior=prior) for i in range(0, len(crops), batch)])


def opencv_fill(crops: np.ndarray, masks: np.ndarray, flag: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.inpaint(c, m.astype(np.uint8), 5, flag) for c, m in zip(crops, masks)])


# ------------------------------------------------------------------------------------------- metrics

def region_scores(out: np.ndarray, clean: np.ndarray, region: np.ndarray) -> dict[str, np.ndarray]:
    """Per image, inside `region` (bool [N, S, S]): L1 and PSNR on [0, 1] pixels, SSIM map averaged; and the
    PSNR of the whole crop (psnr_crop)."""
    x = torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(clean).permute(0, 3, 1, 2).float() / 255
    m = torch.from_numpy(region).float()
    n = m.flatten(1).sum(1).clamp(min=1)
    diff = (x - y)
    l1 = (diff.abs().mean(1) * m).flatten(1).sum(1) / n
    mse = (diff.pow(2).mean(1) * m).flatten(1).sum(1) / n
    ssim = torch.cat([(ssim_map(x[i:i + 32], y[i:i + 32]) * m[i:i + 32]).flatten(1).sum(1)
                      for i in range(0, len(x), 32)]) / n
    mse_crop = diff.pow(2).flatten(1).mean(1)
    return {"l1": l1.numpy(), "ssim": ssim.numpy(), "psnr": psnr_from_mse(mse).numpy(),
            "psnr_crop": psnr_from_mse(mse_crop).numpy()}


def _descriptor(args) -> np.ndarray:
    from core import face as F

    crop, lm = args
    x0, y0 = np.floor(lm.min(0)).astype(int)
    x1, y1 = np.ceil(lm.max(0)).astype(int)
    face = F.Face(bbox=(int(x0), int(y0), int(x1), int(y1)), score=1.0, landmarks=lm, detector="given")
    return F.face_descriptor(np.ascontiguousarray(crop), face)


def descriptors(crops: np.ndarray, landmarks: np.ndarray, workers: int) -> np.ndarray:
    """dlib 128-d descriptors of crops, through the given (clean-face) landmarks: no detection on the output."""
    jobs = list(zip(list(crops), list(landmarks)))
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            return np.stack(list(pool.map(_descriptor, jobs, chunksize=8)))
    return np.stack([_descriptor(j) for j in jobs])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = (a & b).reshape(len(a), -1).sum(1)
    union = (a | b).reshape(len(a), -1).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def summary(scores: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.mean(v)) for k, v in scores.items()}


# ------------------------------------------------------------------------------------------- pictures

def label_tile(text: str, h: int, w: int = 110) -> np.ndarray:
    import cv2

    tile = np.full((h, w, 3), 255, np.uint8)
    for j, line in enumerate(text.split("\n")):
        cv2.putText(tile, line, (6, h // 2 - 8 + 18 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def grid_image(rows: list[tuple[str, np.ndarray]], gap: int = 2) -> np.ndarray:
    """rows: (label, images [K, S, S, 3]) -> one picture, a labelled row per entry."""
    out = []
    for label, ims in rows:
        s = ims.shape[1]
        cells = [label_tile(label, s)]
        for im in ims:
            cells += [im, np.full((s, gap, 3), 255, np.uint8)]
        row = np.concatenate(cells, 1)
        out += [row, np.full((gap, row.shape[1], 3), 255, np.uint8)]
    return np.concatenate(out, 0)


def save_png(path: str, rgb: np.ndarray) -> None:
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(rgb).save(path)


def tinted(crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
    from core.pipelines.deocclude import overlay_mask

    return np.stack([overlay_mask(c, m) for c, m in zip(crops, masks)])


# ------------------------------------------------------------------------------------------- the run

# "ours" = the pipeline (face prior restricted to the face region); "ours, mirror prior" = the model's own
# Inpainter.inpaint (its unrestricted mirror prior); "ours w/o prior" = the ablation model (--noprior-ckpt)
METHODS = ("ours", "ours, mirror prior", "ours w/o prior", "cv2 Telea", "cv2 NS")


def load_data(shards: str, n: int) -> dict:
    from train.shards import load_source

    d = load_source("celebamask", 256, shards)
    val = np.flatnonzero(d["split"] == 1)[:n]
    train = np.flatnonzero(d["split"] == 0)
    out = {"images": d["images"][val], "landmarks": d["landmarks"][val], "keys": d["key"][val],
           "glasses": glasses_donors(d["images"][train], d["labels"][train], d["landmarks"][train])}
    del d
    m = load_source("masked", 256, shards)
    mval = m["split"] == 1
    out["mask_bank"] = mask_bank(m["images"][mval], m["landmarks"][mval])
    out["masked_val"] = (m["images"][mval], m["landmarks"][mval])
    return out


def load_inpainter(folder: str | None, dev, default: bool):
    """Inpainter from a folder, or the bundled "deocclusion" (default=True); None when there is none."""
    from core.models.deocclusion import Inpainter

    if folder:
        return Inpainter.from_pretrained(folder, device=dev)
    if default:
        from core.loading import available, load_model

        if available("deocclusion"):
            return load_model("deocclusion", device=dev)
    return None


def run_set(kind: str, data: dict, parser, models: dict, dev, args) -> tuple[dict, dict]:
    """One occluder kind -> (metrics, pictures for the grid)."""
    import cv2

    t0 = time.time()
    clean, lm_clean = data["images"], data["landmarks"]
    donors = data["glasses"] if kind == "sunglasses" else data["mask_bank"]
    occ, true = occlude(clean, lm_clean, kind, donors)
    lm, found = redetect(occ, lm_clean, args.workers)
    labels = parse(parser, occ, dev)
    masks = {"true": true, "auto": auto_masks(labels, lm)}
    ious = iou(masks["auto"], true)
    variants = {name: float(iou(auto_masks(labels, lm, **opt), true).mean()) for name, opt in MASK_VARIANTS.items()}
    res = {"n": int(len(clean)), "landmarks_redetected": int(found.sum()), "auto_mask_iou": float(ious.mean()),
           "auto_mask_iou_variants": variants,
           "auto_mask_iou_median": float(np.median(ious)), "auto_mask_iou_ge_0.5": float((ious >= 0.5).mean()),
           "auto_mask_recall": float(((masks["auto"] & true).reshape(len(true), -1).sum(1)
                                      / np.maximum(true.reshape(len(true), -1).sum(1), 1)).mean()),
           "true_mask_area": float(true.mean()), "scores": {}}
    clean_desc = descriptors(clean, lm_clean, args.workers)
    outputs: dict[tuple[str, str], np.ndarray] = {}

    def score(name: str, mask_kind: str, out: np.ndarray) -> None:
        sc = region_scores(out, clean, true)
        sc["id"] = cosine(descriptors(out, lm_clean, args.workers), clean_desc)
        res["scores"][f"{name} | {mask_kind}"] = summary(sc)
        outputs[(name, mask_kind)] = out

    score("input (occluded)", "-", occ)
    for mask_kind, m in masks.items():
        for name in METHODS:
            if name.startswith("ours"):
                model = models.get("ours w/o prior" if name == "ours w/o prior" else "ours")
                if model is None:
                    continue
                out = model_fill(model, occ, m, lm, dev, prior="mirror" if name == "ours, mirror prior" else "face")
            else:
                out = opencv_fill(occ, m, cv2.INPAINT_TELEA if name == "cv2 Telea" else cv2.INPAINT_NS)
            score(name, mask_kind, out)
    # auto-mask dilation sweep (ours only): which dilation suits the model
    from core.pipelines.deocclude import DILATE

    sweep = {}
    for d in args.dilate:
        md = auto_masks(labels, lm, d)
        entry = {"iou": float(iou(md, true).mean())}
        if d == DILATE and "ours | auto" in res["scores"]:   # the pipeline's own setting: already scored
            entry.update(res["scores"]["ours | auto"])
        elif models.get("ours") is not None:
            out = model_fill(models["ours"], occ, md, lm, dev)
            sc = region_scores(out, clean, true)
            sc["id"] = cosine(descriptors(out, lm_clean, args.workers), clean_desc)
            entry.update(summary(sc))
        sweep[str(d)] = entry
    res["dilate_sweep"] = sweep
    res["seconds"] = round(time.time() - t0, 1)
    pics = {"occluded": occ, "auto": masks["auto"], "clean": clean, "outputs": outputs}
    return res, pics


def clean_false_positives(data: dict, parser, dev) -> dict:
    """The automatic mask on the clean faces (nothing pasted): how much of an unoccluded face it would repaint."""
    labels = parse(parser, data["images"], dev)
    auto = auto_masks(labels, data["landmarks"])
    area = auto.reshape(len(auto), -1).mean(1)
    return {"mean_area": float(area.mean()), "faces_with_mask": float((area > 0).mean()),
            "faces_over_1pct": float((area > 0.01).mean())}


def format_table(metrics: dict) -> str:
    lines = []
    for kind in ("sunglasses", "mask"):
        r = metrics["sets"][kind]
        lines.append(f"\n**{kind}** ({r['n']} val faces; dlib found the occluded face in {r['landmarks_redetected']}; "
                     f"auto-mask IoU {r['auto_mask_iou']:.3f}, median {r['auto_mask_iou_median']:.3f}, "
                     f"recall {r['auto_mask_recall']:.3f})\n")
        lines.append("| method | mask | L1 ↓ | SSIM ↑ | PSNR ↑ | PSNR crop ↑ | ID (dlib cos) ↑ |")
        lines.append("|---|---|---|---|---|---|---|")
        for key, s in r["scores"].items():
            name, mask_kind = key.split(" | ")
            lines.append(f"| {name} | {mask_kind} | {s['l1']:.4f} | {s['ssim']:.4f} | {s['psnr']:.2f} | "
                         f"{s['psnr_crop']:.2f} | {s['id']:.4f} |")
        lines.append("\nauto-mask IoU of other mask rules: " + "; ".join(
            f"{name} {v:.3f}" for name, v in r["auto_mask_iou_variants"].items()))
        if r.get("dilate_sweep"):
            lines.append("\nauto-mask dilation (px at 256): " + "; ".join(
                f"{d}: IoU {e['iou']:.3f}" + (f", ours L1 {e['l1']:.4f} SSIM {e['ssim']:.4f} PSNR {e['psnr']:.2f} "
                                              f"ID {e['id']:.4f}" if "l1" in e else "")
                for d, e in r["dilate_sweep"].items()))
    if "clean" in metrics:
        c = metrics["clean"]
        lines.append(f"\nauto mask on the clean faces: mean area {100 * c['mean_area']:.2f} % of the crop, "
                     f"{100 * c['faces_with_mask']:.0f} % of faces get a non-empty mask, "
                     f"{100 * c['faces_over_1pct']:.0f} % one over 1 % of the crop")
    lines.append("\nthesis (Table 5.1, 1000 sunglasses faces, ArcFace ID): L1 0.062, SSIM 0.623, PSNR 28.90, ID 0.690")
    return "\n".join(lines)


def goals(metrics: dict) -> list[str]:
    """The issue's goals, checked: ours beats both OpenCV baselines on every metric; auto-mask IoU >= 0.7."""
    notes = []
    for kind, r in metrics["sets"].items():
        iou_ok = r["auto_mask_iou"] >= 0.7
        notes.append(f"{kind}: auto-mask IoU {r['auto_mask_iou']:.3f} {'>=' if iou_ok else '<'} 0.7")
        for mask_kind in ("true", "auto"):
            ours = r["scores"].get(f"ours | {mask_kind}")
            if ours is None:
                notes.append(f"{kind} / {mask_kind} mask: no model, not compared")
                continue
            for base in ("cv2 Telea", "cv2 NS"):
                b = r["scores"][f"{base} | {mask_kind}"]
                lost = [k for k in ("l1", "ssim", "psnr", "id")
                        if (ours[k] >= b[k] if k == "l1" else ours[k] <= b[k])]
                notes.append(f"{kind} / {mask_kind} mask: ours vs {base}: "
                             + ("better on every metric" if not lost else "NOT better on " + ", ".join(lost)))
    return notes


FACE_PARTS = tuple(ID[c] for c in ("skin", "nose", "upper_lip", "lower_lip", "mouth"))


def real_masked_grid(data: dict, parser, model, dev, n: int, path: str | None, workers: int) -> dict:
    """Real photos of masked people (masked_256 val crops) through the whole automatic pipeline -> metrics
    (and a picture when `path` is given: input | auto mask | cv2 Telea | ours). No clean truth exists, so the
    measure is the parser's own reading of the filled region: the share of its pixels it now labels as face
    parts (skin, nose, lips, mouth) rather than occluder: a plausibility proxy, not a fidelity metric."""
    import cv2

    images, shard_lm = data["masked_val"]
    images, shard_lm = images[:n], shard_lm[:n]
    lm, _ = redetect(images, shard_lm, workers)
    labels = parse(parser, images, dev)
    auto = auto_masks(labels, lm)
    outs = {"input": images, "cv2 Telea": opencv_fill(images, auto, cv2.INPAINT_TELEA)}
    if model is not None:
        outs["ours"] = model_fill(model, images, auto, lm, dev)
    has = auto.reshape(len(auto), -1).any(1)
    metrics = {"n": int(len(images)), "auto_mask_found": round(float(has.mean()), 4),
               "auto_mask_area": round(float(auto[has].mean()), 4) if has.any() else None}
    for name, filled in outs.items():
        lab = parse(parser, filled, dev)
        region = auto.astype(bool)
        metrics[name] = {"face_parts_share": round(float(np.isin(lab[region], FACE_PARTS).mean()), 4),
                         "occluder_share": round(float((lab[region] == OCCLUDER).mean()), 4)}
    if path:
        rows = [("input", images), ("auto mask", tinted(images, auto)), ("cv2 Telea", outs["cv2 Telea"])]
        if "ours" in outs:
            rows.append(("ours", outs["ours"]))
        save_png(path, grid_image(rows))
    return metrics


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", default=".cache/shards")
    ap.add_argument("--n", type=int, default=200, help="val faces (the first n of split 1; 450 exist)")
    ap.add_argument("--ckpt", default=None, help="model folder (Inpainter.from_pretrained); default: the bundled one")
    ap.add_argument("--noprior-ckpt", default=None, help="the ablation without the face prior (a model folder)")
    ap.add_argument("--json", default=None, help="write the metrics here")
    ap.add_argument("--grid", default=None, help="PNG: occluded | auto mask | cv2 Telea | ours | clean")
    ap.add_argument("--grid-faces", type=int, default=6, help="faces per occluder kind in --grid")
    ap.add_argument("--real-masked", type=int, default=0, metavar="N",
                    help="also run N real masked photos (masked_256 val) through the automatic pipeline")
    ap.add_argument("--real-grid", default="out/deocclusion_real_masked.png", help="where --real-masked goes")
    ap.add_argument("--real-only", action="store_true", help="only the --real-masked photos (no synthetic sets)")
    ap.add_argument("--dilate", default="1,2,3", help="auto-mask dilations (px) to sweep for the model")
    ap.add_argument("--no-clean", action="store_true", help="skip the auto mask on the clean faces")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes for dlib")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    args.dilate = [int(d) for d in str(args.dilate).split(",") if d.strip()]
    dev = torch.device(args.device)

    from core.loading import load_model
    from core.pipelines import deocclude as D

    t0 = time.time()
    data = load_data(args.shards, args.n)
    parser = load_model("parser", device=dev)
    models = {"ours": load_inpainter(args.ckpt, dev, default=True),
              "ours w/o prior": load_inpainter(args.noprior_ckpt, dev, default=False)}
    if models["ours"] is None:
        print("no de-occlusion model (bundled or --ckpt): only the OpenCV baselines and the mask IoU", flush=True)
    metrics = {"n": int(len(data["images"])), "seed": SEED,
               "auto_mask": {"forehead": D.FOREHEAD, "extend": D.EXTEND, "open": D.OPEN_R, "close": D.CLOSE_R,
                             "min_area": D.MIN_AREA, "dilate": D.DILATE, "hair": False, "glasses": True},
               "models": {"ours": args.ckpt or ("bundled" if models["ours"] is not None else None),
                          "ours w/o prior": args.noprior_ckpt}, "sets": {}}
    if args.real_only:
        metrics = {"real_masked": real_masked_grid(data, parser, models["ours"], dev, args.real_masked or 64,
                                                   args.real_grid, args.workers)}
        print(json.dumps(metrics, indent=1), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(metrics, f, indent=2)
        return metrics
    pictures = {}
    for kind in ("sunglasses", "mask"):
        metrics["sets"][kind], pictures[kind] = run_set(kind, data, parser, models, dev, args)
        print(f"{kind}: done in {metrics['sets'][kind]['seconds']} s", flush=True)
    if not args.no_clean:
        metrics["clean"] = clean_false_positives(data, parser, dev)
    metrics["goals"] = goals(metrics)
    metrics["seconds"] = round(time.time() - t0, 1)
    print(format_table(metrics), flush=True)
    print("\n".join(metrics["goals"]), flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(metrics, f, indent=2)
    if args.grid:
        k = args.grid_faces
        rows = []
        for kind in ("sunglasses", "mask"):
            p = pictures[kind]
            rows += [(f"{kind}\noccluded", p["occluded"][:k]), ("auto mask", tinted(p["occluded"][:k], p["auto"][:k])),
                     ("cv2 Telea", p["outputs"][("cv2 Telea", "auto")][:k])]
            if ("ours", "auto") in p["outputs"]:
                rows.append(("ours", p["outputs"][("ours", "auto")][:k]))
            rows.append(("clean", p["clean"][:k]))
        save_png(args.grid, grid_image(rows))
    if args.real_masked:
        metrics["real_masked"] = real_masked_grid(data, parser, models["ours"], dev, args.real_masked,
                                                  args.real_grid, args.workers)
        print(json.dumps(metrics["real_masked"]), flush=True)
    return metrics


if __name__ == "__main__":
    main()
