"""Evaluate pose editing (issue 6; Yin 2022, ch. 3) on held-out CelebA identities, against two baselines.

    python -m train.eval_pose [--n 100] [--deltas 15 30 45] [--nosampler-ckpt DIR]
                              [--sampler-ckpt DIR --inpainter-ckpt DIR] [--json OUT] [--grid PNG]

Runs on CPU with dlib (the front-end measures everything); not meant for the GPU machine, which has no dlib.

Data: `celeba_id` 128 px shards, split 1 only (the val identities of train/pose_data.py; disjoint from the
training identities, checked). Faces A: a seeded shuffle of the val photos taken round-robin over identities, so
`--n` faces cover every val person about equally (18 people, ~30 photos each).

Per face A, exactly as the app (core.pipelines.pose.edit_photo) sees a face: the front-end on the crop
(`measure_crop`, dlib on a 256 px upscale) gives A's landmarks and crop-level (yaw, pitch); A is skipped (and
counted) when it finds no face. Per yaw change `delta` in --deltas:
 - target yaw = yaw_A - delta * sign(yaw_A) (sign(0) = +1): towards and past frontal. Turning away from frontal
   would leave the data (few CelebA faces beyond +-40 degrees) and the real reference photos; towards frontal
   is also the harder direction (the hidden cheek must be invented). |target| <= 45 whenever |yaw_A| <= 45.
   Target pitch = A's pitch (kept).
 - methods, all producing the canonical 128 px crop of the new pose (the frame `edit_crop` re-frames to):
   `ours` (Pixel Attention Sampler + inpainter, the sampler's trusted pixels kept: the app's output),
   `ours-inpainter` (the inpainter's output as is, the thesis's final image), `no-sampler` (the thesis's
   ablation: the inpainter trained with --no-sampler on the half-face aligned input), `2d-warp` (`warp_2d`, no learning: A is first re-framed
   by the same input -> output crop affine, then warped piecewise-affinely from its re-framed landmarks to the
   target 2D landmarks), and `input` (A unedited: the do-nothing reference).
 - pose accuracy: the front-end on the output (`measure_crop`); |yaw - target| and |pitch - target pitch|
   averaged over the outputs where it finds a face; `found` = share where it does.
 - identity to the input: dlib descriptor distance output <-> A (same detection as the pose measurement);
   `same` = share of ALL edits with a face found and distance < 0.6 (a lost face counts as a failure).
 - the real photo B: the photo of A's identity (not A) whose shard yaw is closest to the target, within 10
   degrees of yaw and 15 of pitch, and in which the front-end finds a face; edits without one are left out of
   these columns (`ref n` says how many have one). dlib distance output <-> B (`same B` over those edits, lost
   faces as failures) and SSIM(output, B): Gaussian 11 x 11, sigma 1.5 (Wang et al. 2004, skimage), per-pixel map
   averaged over B's 68-landmark convex hull (the face from brows to chin: hair and background differ between
   two photos and say nothing about the edit); the whole-crop SSIM is in the JSON. The `input` row's B columns
   are two real photos of one person at different poses: the level an edit should beat.
Sanity line: the front-end's yaw / pitch of the inputs vs the shard's (which picked B): they should agree to
about a degree. Latency: median per 128 px crop on this CPU (torch threads as set), after warm-up: the models'
forward (`edit_pose`), the whole `edit_crop`, the 2D warp, and the front-end measurement of a crop.
Goals (issue 6): `ours` yaw error < 5 degrees for changes up to 30; `same` >= 95% at 15 and >= 85% at 30.
`--grid PNG`: rows input | 2D warp | no-sampler | ours | real B at --grid-delta, for the README.

Deliberately different from the thesis's evaluation (which scores synthetic rotations of a 3D-fitted face): no
pixel ground truth exists for a real person at an exact new pose, so B is only a similar-pose photo (other
expression, light, hair) and its SSIM is a coarse signal; dlib is both the pose judge and the identity judge.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import cv2
import numpy as np
import torch

from core.metrics import SAME_PERSON  # dlib's same-person distance

REF_MAX_DYAW = 10.0          # a real photo B counts as "at a similar pose" within these (degrees, shard pose)
REF_MAX_DPITCH = 15.0
METHODS = ("input", "2d-warp", "no-sampler", "ours-inpainter", "ours", "ours-gain")
GOALS = {"yaw_mae": {15: 5.0, 30: 5.0}, "same": {15: 0.95, 30: 0.85}}   # ours; yaw_mae below, same above


# -------------------------------------------------------------------------------------------- pure helpers

def target_yaw(yaw: float, delta: float) -> float:
    """Turn `delta` degrees towards (and past) frontal."""
    return float(yaw - delta) if yaw >= 0 else float(yaw + delta)


def order_faces(identity: np.ndarray, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rows in a seeded shuffle, taken round-robin over identities (each person's k-th photo before any (k+1)-th)."""
    rows = np.random.default_rng(seed).permutation(rows)
    rank = np.zeros(len(rows), np.int64)
    seen: dict[int, int] = {}
    for k, r in enumerate(rows):
        rank[k] = seen.get(int(identity[r]), 0)
        seen[int(identity[r])] = rank[k] + 1
    return rows[np.argsort(rank, kind="stable")]


def reference_candidates(rows: np.ndarray, pose: np.ndarray, yaw: float, pitch: float,
                         max_dyaw: float = REF_MAX_DYAW, max_dpitch: float = REF_MAX_DPITCH) -> np.ndarray:
    """Rows (photos of one person) within the yaw / pitch window of (yaw, pitch), closest yaw first."""
    dy, dp = np.abs(pose[rows, 0] - yaw), np.abs(pose[rows, 1] - pitch)
    ok = (dy <= max_dyaw) & (dp <= max_dpitch)
    return rows[ok][np.argsort(dy[ok], kind="stable")]


def hull_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """[68, 2] crop pixels -> [size, size] bool convex hull of the landmarks."""
    m = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(landmarks).astype(np.int32)), 1)
    return m > 0


def ssim_region(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """SSIM of two uint8 [S, S, 3] crops (Gaussian 11 x 11, sigma 1.5, channel mean) -> (over mask, whole crop)."""
    from skimage.metrics import structural_similarity

    whole, smap = structural_similarity(a, b, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True)
    smap = smap.mean(2)
    return float(smap[mask].mean()) if mask.any() else float("nan"), float(whole)


def warp_baseline(crop: np.ndarray, landmarks: np.ndarray, reframe: np.ndarray, tgt_lm: np.ndarray) -> np.ndarray:
    """The no-learning baseline in the output frame: re-frame the crop like the models' output, then `warp_2d`."""
    from core.pipelines.pose import warp_2d

    s = crop.shape[0]
    framed = cv2.warpAffine(crop, reframe.astype(np.float64), (s, s), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    src = landmarks @ reframe[:, :2].T + reframe[:, 2]
    return warp_2d(framed, src, tgt_lm)


def summarise(records: list[dict]) -> dict:
    """Records of one (delta, method) -> the table's numbers (see the module docstring for each definition)."""
    n = len(records)
    found = [r for r in records if r["found"]]
    refs = [r for r in records if r["ref"]]
    ref_found = [r for r in refs if r["found"]]

    def mean(v):
        return float(np.mean(v)) if len(v) else None

    return dict(
        n=n, found=len(found) / n if n else None,
        yaw_mae=mean([r["yaw_err"] for r in found]), pitch_mae=mean([r["pitch_err"] for r in found]),
        yaw_over=mean([r["yaw_over"] for r in found if "yaw_over" in r]),
        id_dist=mean([r["d_input"] for r in found]),
        same=sum(r["d_input"] < SAME_PERSON for r in found) / n if n else None,
        ref_n=len(refs), ref_yaw_gap=mean([r["ref_yaw_gap"] for r in refs]),
        ref_dist=mean([r["d_ref"] for r in ref_found]),
        same_ref=sum(r["d_ref"] < SAME_PERSON for r in ref_found) / len(refs) if refs else None,
        ssim_face=mean([r["ssim_face"] for r in refs]), ssim_crop=mean([r["ssim_crop"] for r in refs]))


# -------------------------------------------------------------------------------------------- front-end

def analyse(crop: np.ndarray, upscale: int = 256) -> dict | None:
    """One detection serves both judges (`core.pipelines.pose.read_crop`): yaw / pitch, landmarks in crop pixels
    and the dlib descriptor. None without a face."""
    from core.pipelines.pose import read_crop

    r = read_crop(crop, upscale)
    if r is None:
        return None
    # the detector's own angles on the 256 px upscale (head_pose of that image), as the README's numbers were made
    return dict(yaw=float(r.face.yaw), pitch=float(r.face.pitch), landmarks=r.face.landmarks.astype(np.float32),
                desc=r.descriptor)


def distance(a: dict, b: dict) -> float:
    from core import face as F

    return F.identity_distance(a["desc"], b["desc"])


# -------------------------------------------------------------------------------------------- data, models

def load_val(shards: str) -> dict:
    from train.shards import load_source

    d = load_source("celeba_id", 128, root=shards)
    tr, va = set(d["identity"][d["split"] == 0].tolist()), set(d["identity"][d["split"] == 1].tolist())
    if tr & va:
        raise SystemExit(f"celeba_id shards: {len(tr & va)} identities are in both splits; held-out means disjoint")
    return d


def load_models(args, device: torch.device) -> dict:
    """{'ours': (sampler, inpainter), 'no-sampler': (None, ablation inpainter)} (the latter only if given)."""
    from core.models.pose import PixelAttentionSampler, PoseInpainter

    if args.sampler_ckpt or args.inpainter_ckpt:
        if not (args.sampler_ckpt and args.inpainter_ckpt):
            raise SystemExit("--sampler-ckpt and --inpainter-ckpt go together")
        ours = (PixelAttentionSampler.from_pretrained(args.sampler_ckpt, device=device),
                PoseInpainter.from_pretrained(args.inpainter_ckpt, device=device))
    else:
        from core.loading import load_model

        ours = (load_model("pose-sampler", device=device), load_model("pose-inpainter", device=device))
    models = {"ours": ours, "ours-inpainter": ours}
    if args.yaw_gain != 1.0:
        models["ours-gain"] = (*ours, args.yaw_gain)
    if args.nosampler_ckpt:
        models["no-sampler"] = (None, PoseInpainter.from_pretrained(args.nosampler_ckpt, device=device))
    return models


# -------------------------------------------------------------------------------------------- evaluation

def edit(method: str, crop: np.ndarray, a: dict, ty: float, tp: float, models: dict) -> np.ndarray:
    from core.pipelines import pose as P

    if method == "input":
        return crop
    if method == "ours-gain":  # ours asked for --yaw-gain x the yaw change instead of the app's P.YAW_GAIN
        samp, inp, gain = models["ours-gain"]
        return P.edit_crop(crop, a["landmarks"], a["yaw"], a["pitch"], ty, tp, (samp, inp), yaw_gain=gain)["output"]
    if method == "2d-warp":
        g = P.crop_geometry(a["landmarks"], a["yaw"], a["pitch"], ty, tp, crop.shape[0])
        return warp_baseline(crop, a["landmarks"], g["reframe"], g["tgt_lm3d"][0, :, :2].numpy())
    return P.edit_crop(crop, a["landmarks"], a["yaw"], a["pitch"], ty, tp, models[method],
                       sampler=method != "no-sampler", keep_sampled=method == "ours")["output"]


def evaluate(d: dict, faces: np.ndarray, deltas: list[float], models: dict, grid_delta: float | None,
             grid_rows: int) -> tuple[dict, list]:
    methods = [m for m in METHODS if m in ("input", "2d-warp") or m in models]
    images, pose, ident = d["images"], d["pose"], d["identity"]
    val = np.flatnonzero(d["split"] == 1)
    records = {(dl, m): [] for dl in deltas for m in methods}
    ref_cache: dict[int, dict | None] = {}
    sanity, no_face, grid = [], 0, []
    t0 = last = time.time()
    for i, row in enumerate(faces):
        crop = images[row]
        a = analyse(crop)
        if a is None:
            no_face += 1
            continue
        sanity.append((a["yaw"] - pose[row, 0], a["pitch"] - pose[row, 1]))
        same_id = val[(ident[val] == ident[row]) & (val != row)]
        for dl in deltas:
            ty, tp = target_yaw(a["yaw"], dl), a["pitch"]
            ref = None
            for b in reference_candidates(same_id, pose, ty, tp):
                if int(b) not in ref_cache:
                    ref_cache[int(b)] = analyse(images[b])
                if ref_cache[int(b)] is not None:
                    ref = int(b)
                    break
            outs = {}
            for m in methods:
                out = outs[m] = edit(m, crop, a, ty, tp, models)
                o = a if m == "input" else analyse(out)
                r = dict(found=o is not None, ref=ref is not None)
                if o is not None:
                    r.update(yaw_err=abs(o["yaw"] - ty), pitch_err=abs(o["pitch"] - tp), d_input=distance(o, a),
                             # signed along the requested turn: < 0 = the face turned less than asked
                             yaw_over=(o["yaw"] - ty) * float(np.sign(ty - a["yaw"]) or 1.0))
                if ref is not None:
                    r["ref_yaw_gap"] = abs(ref_cache[ref]["yaw"] - ty)
                    r["ssim_face"], r["ssim_crop"] = ssim_region(out, images[ref], hull_mask(d["landmarks"][ref], 128))
                    if o is not None:
                        r["d_ref"] = distance(o, ref_cache[ref])
                records[(dl, m)].append(r)
            if dl == grid_delta and len(grid) < grid_rows:
                grid.append((outs, None if ref is None else images[ref], a["yaw"], ty))
        if time.time() - last >= 30 or i + 1 == len(faces):
            last = time.time()
            print(f"{i + 1}/{len(faces)} faces, {(last - t0) / (i + 1):.1f} s/face", flush=True)
    s = np.abs(np.array(sanity)) if sanity else np.zeros((0, 2))
    out = {"faces": int(len(faces)), "inputs_without_face": no_face,
           "people": int(len(np.unique(ident[faces]))),
           "input_vs_shard": {"yaw_mae": float(s[:, 0].mean()) if len(s) else None,
                              "pitch_mae": float(s[:, 1].mean()) if len(s) else None,
                              "yaw_median_abs": float(np.median(s[:, 0])) if len(s) else None},
           "results": {f"{dl:g}": {m: summarise(records[(dl, m)]) for m in methods} for dl in deltas}}
    return out, grid


@torch.no_grad()
def latency(crop: np.ndarray, a: dict, models: dict, runs: int) -> dict:
    from core.models.pose import edit_pose
    from core.pipelines import pose as P

    ty, tp = target_yaw(a["yaw"], 30), a["pitch"]

    def timed(fn) -> float:
        for _ in range(2):
            fn()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return round(statistics.median(times) * 1000, 1)

    g = P.crop_geometry(a["landmarks"], a["yaw"], a["pitch"], ty, tp)
    x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float() / 255.0
    out = {"threads": torch.get_num_threads(), "runs": runs}
    for name, nets in models.items():
        if name in ("ours-inpainter", "ours-gain"):  # the same networks as "ours"
            continue
        samp, inp = nets
        out[f"{name}_forward_ms"] = timed(lambda: edit_pose(samp, inp, x, g["src_lm"], g["tgt_lm3d"]))
        out[f"{name}_edit_crop_ms"] = timed(lambda: P.edit_crop(crop, a["landmarks"], a["yaw"], a["pitch"], ty, tp,
                                                               (samp, inp), sampler=samp is not None))
    out["2d-warp_ms"] = timed(lambda: edit("2d-warp", crop, a, ty, tp, models))
    out["front_end_measure_ms"] = timed(lambda: analyse(crop))
    return out


# -------------------------------------------------------------------------------------------- output

def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_table(m: dict) -> str:
    lines = ["| delta | method | found | yaw err | pitch err | yaw over (< 0: turned less) | id dist | same | ref n | "
             "id dist B | same B | SSIM face B |", "|" + "---|" * 12]
    for dl, per in m["results"].items():
        for name, r in per.items():
            lines.append(f"| {dl} | {name} | {fmt(r['found'], '.0%')} | {fmt(r['yaw_mae'], '.1f')} | "
                         f"{fmt(r['pitch_mae'], '.1f')} | {fmt(r.get('yaw_over'), '+.1f')} | {fmt(r['id_dist'], '.3f')} | {fmt(r['same'], '.0%')} | "
                         f"{r['ref_n']} | {fmt(r['ref_dist'], '.3f')} | {fmt(r['same_ref'], '.0%')} | "
                         f"{fmt(r['ssim_face'], '.3f')} |")
    s = m["input_vs_shard"]
    lines.append(f"\n{m['faces']} faces of {m['people']} held-out people ({m['inputs_without_face']} without a face "
                 f"found, skipped); front-end vs shard pose of the inputs: yaw MAE {fmt(s['yaw_mae'], '.1f')}, "
                 f"pitch MAE {fmt(s['pitch_mae'], '.1f')} degrees")
    if "latency" in m:
        lines.append("latency (ms per crop, CPU): " + ", ".join(f"{k} {v}" for k, v in m["latency"].items()))
    return "\n".join(lines)


def check_goals(m: dict) -> dict:
    goals = {}
    for key, per in GOALS.items():
        for dl, goal in per.items():
            r = m["results"].get(f"{dl:g}")
            v = None if r is None else r["ours"][key]
            met = v is not None and (v < goal if key == "yaw_mae" else v >= goal)
            goals[f"{key}@{dl}"] = {"goal": goal, "value": v, "met": met}
    return goals


def write_grid(grid: list, path: str, delta: float) -> None:
    from PIL import Image

    cols = ["input", "2d-warp", "no-sampler", "ours"]
    lines = []
    for outs, ref, yaw, ty in grid:
        tiles = [outs.get(c, np.full((128, 128, 3), 128, np.uint8)) for c in cols]
        tiles.append(ref if ref is not None else np.full((128, 128, 3), 128, np.uint8))
        line = np.concatenate(tiles, 1).copy()
        cv2.rectangle(line, (0, 0), (52, 14), (0, 0, 0), -1)
        cv2.putText(line, f"{yaw:+.0f}>{ty:+.0f}", (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                    cv2.LINE_AA)
        lines.append(line)
    body = np.concatenate(lines, 0)
    header = np.full((22, body.shape[1], 3), 255, np.uint8)
    for k, title in enumerate(("input", "2D warp", "no sampler", "ours", "real B")):
        cv2.putText(header, title, (k * 128 + 6, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(np.concatenate([header, body], 0)).save(path)
    print(f"grid ({len(grid)} rows, yaw change {delta:g}): {path}", flush=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="held-out faces (the val split has ~530 photos, 18 people)")
    ap.add_argument("--deltas", type=float, nargs="+", default=[15.0, 30.0, 45.0], help="yaw changes, degrees")
    ap.add_argument("--shards", default=".cache/shards")
    ap.add_argument("--sampler-ckpt", default=None, help="save_pretrained folder (default: hub 'pose-sampler')")
    ap.add_argument("--inpainter-ckpt", default=None, help="save_pretrained folder (default: hub 'pose-inpainter')")
    ap.add_argument("--nosampler-ckpt", default=None, help="the --no-sampler inpainter folder (ablation row)")
    ap.add_argument("--seed", type=int, default=0, help="order of the faces")
    ap.add_argument("--yaw-gain", type=float, default=1.0,
                    help="!= 1: add the row 'ours-gain', ours asked for this multiple of the yaw change")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--latency-runs", type=int, default=10)
    ap.add_argument("--json", default=os.path.join(".cache", "eval_pose.json"))
    ap.add_argument("--grid", default=None, metavar="PNG")
    ap.add_argument("--grid-delta", type=float, default=30.0)
    ap.add_argument("--grid-rows", type=int, default=6)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    models = load_models(args, device)
    if "no-sampler" not in models:
        print("no --nosampler-ckpt: the ablation row is left out", flush=True)
    d = load_val(args.shards)
    faces = order_faces(d["identity"], np.flatnonzero(d["split"] == 1), args.seed)[:args.n]
    print(f"{len(faces)} held-out faces, yaw changes {args.deltas}, methods "
          f"{[m for m in METHODS if m in ('input', '2d-warp') or m in models]}", flush=True)
    t = time.time()
    metrics, grid = evaluate(d, faces, args.deltas, models, args.grid_delta if args.grid else None, args.grid_rows)
    metrics["eval_s"] = round(time.time() - t, 1)
    for row in faces:                                       # latency on the first face the front-end finds
        a = analyse(d["images"][row])
        if a is not None:
            metrics["latency"] = latency(d["images"][row], a, models, args.latency_runs)
            break
    metrics["goals"] = check_goals(metrics)
    metrics["protocol"] = {"deltas": args.deltas, "direction": "towards and past frontal", "seed": args.seed,
                           "ref_window_deg": [REF_MAX_DYAW, REF_MAX_DPITCH], "same_person_below": SAME_PERSON,
                           "models": {"sampler": args.sampler_ckpt or "hub:pose-sampler",
                                      "inpainter": args.inpainter_ckpt or "hub:pose-inpainter",
                                      "nosampler": args.nosampler_ckpt}}
    print(format_table(metrics), flush=True)
    print("goals: " + json.dumps(metrics["goals"]), flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(metrics, f, indent=2)
    if args.grid:
        write_grid(grid, args.grid, args.grid_delta)
    return metrics


if __name__ == "__main__":
    main()
