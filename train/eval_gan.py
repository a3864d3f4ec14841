"""Evaluate GAN inversion and the attribute sliders (issue 5) on held-out real faces, the way the app runs them.

    python -m train.eval_gan [--n 50] [--refine 100] [--units 2] [--attributes FOLDER]
                             [--generator DIR --encoder DIR --directions DIR] [--json OUT] [--grid PNG]

Runs on the CPU with dlib (the front-end measures identity, yaw and mouth opening); models default to the
registry's ("stylegan", "mtv-encoder", "directions").

Faces: the CelebAMask-HQ val split (split 1 of the `celebamask` 128 px shard; never seen by the generator, the
encoder or the attribute net), a seeded shuffle, upscaled to 256 px and fed to `core.pipelines.gan.invert_photo`
as photos: detection, alignment, encoder, optional refinement, quality (PSNR / SSIM over the 128 px crop, dlib
descriptor distance on 256 px upscales, `same` = distance < 0.6).
 - inversion: encoder only, and refined for --refine Adam steps on w+ (the seed's optimisation mode).
 - sliders: every slider at -units and +units on the encoder's code of each face. Per slider: the change per unit
   of its own measurement, and how far identity and the other measurements move. Measurements: yaw and pitch
   (front-end crop-level angles, `core.pipelines.pose.read_crop`, degrees), mouth opening
   (`train.attributes.mouth_open` on the 68 landmarks) and, with
   --attributes (the AttributeNet that labelled the directions' training samples, train/attributes.py), its heads
   (age in years, probabilities of the binary attributes). "other" = mean over the other measurements of
   |change per unit| / (that measurement's std over the unedited reconstructions, floored: 0.05 for
   probabilities, so rare attributes do not blow up): 0 = untouched.
Latency is in benchmarks/gpu_models.py (model only) and benchmarks/api.py (whole requests).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import cv2
import numpy as np
import torch

from core.metrics import SAME_PERSON  # dlib's same-person distance
# floors of the measurement spreads "other" divides by: a probability nearly constant over the faces (eyeglasses,
# hats are rare) would turn a change of 0.005 into many standard deviations
PROB_STD_FLOOR = 0.05
STD_FLOOR = {"yaw": 1.0, "pitch": 1.0, "mouth_open": 0.005, "age": 1.0}


def front_end(crop: np.ndarray) -> dict | None:
    """yaw / pitch (crop-level, as the pose tab measures) / mouth opening / dlib descriptor of a 128 px crop."""
    from core.pipelines.pose import read_crop
    from train.attributes import mouth_open

    r = read_crop(crop)
    if r is None:
        return None
    return {"yaw": r.yaw, "pitch": r.pitch, "mouth_open": float(mouth_open(r.face.landmarks[None])[0]),
            "descriptor": r.descriptor}


def attribute_values(net, crop: np.ndarray) -> dict:
    if net is None:
        return {}
    from core.pipelines.gan import to_tensor

    with torch.no_grad():
        out = net(to_tensor(crop))
    return {k: float(v[0]) for k, v in out.items() if k not in ("yaw", "pitch", "mouth_open")}


def measurements(crop: np.ndarray, net) -> dict | None:
    fe = front_end(crop)
    if fe is None:
        return None
    return {**fe, **attribute_values(net, crop)}


def load(args):
    from core.models.directions import load_directions
    from core.pipelines import gan

    if args.generator or args.encoder or args.directions:  # any folder given: it replaces the bundled one
        from core.models.encoder import MTVEncoder
        from core.models.stylegan import StyleGAN2Generator

        import hub

        folder = {"generator": args.generator or str(hub.resolve(gan.GENERATOR)),
                  "encoder": args.encoder or str(hub.resolve(gan.ENCODER)),
                  "directions": args.directions or str(hub.resolve(gan.DIRECTIONS))}
        print("models: " + ", ".join(f"{k} {v}" for k, v in folder.items()), flush=True)
        G = StyleGAN2Generator.from_pretrained(folder["generator"]).eval().requires_grad_(False)
        E = MTVEncoder.from_pretrained(folder["encoder"]).eval().requires_grad_(False)
        with open(os.path.join(folder["directions"], "directions.json")) as f:
            meta = {k: v for k, v in json.load(f).items() if k != "sliders"}
        models = gan.GANModels(G=G, E=E, directions=load_directions(folder["directions"]), directions_meta=meta)
        gan.check_models(models)
    else:
        models = gan.load_models()
    net = None
    if args.attributes:
        from core.models.attributes import AttributeNet

        net = AttributeNet.from_pretrained(args.attributes).eval()
    return models, net


def mean(v):
    v = [x for x in v if x is not None]
    return round(float(np.mean(v)), 4) if v else None


def evaluate(photos: list[np.ndarray], models, net=None, refine: int = 50, units: float = 2.0
             ) -> tuple[dict, list[np.ndarray]]:
    """Inversion (encoder, refined) and slider measurements on RGB photos -> (metrics, grid rows)."""
    from core import face as F
    from core.pipelines import gan

    names = list(models.directions)
    recs = {"encoder": [], "refined": []}
    sl = {s: [] for s in names}  # per face: (meas at -u, meas at +u, meas at 0)
    grid, t0 = [], time.time()
    for i, photo in enumerate(photos):
        try:
            inv = gan.invert_photo(photo, models=models)
        except gan.FaceLabError:  # no face found in the photo
            recs["encoder"].append(None)
            continue
        recs["encoder"].append(inv.quality.to_json())
        row = [inv.crop, inv.reconstruction]
        if refine:
            ws, _ = gan.refine_ws(inv.crop, torch.from_numpy(inv.code.ws)[None], None, refine, models.G)
            rec = gan.synthesize(ws, None, models.G)
            recs["refined"].append(gan.measure(inv.crop, rec, inv.face, inv.matrix).to_json())
            row.append(rec)
        base = measurements(inv.reconstruction, net)
        for s in names:
            pair = []
            for v in (-units, units):
                img = gan.edit(inv.code, {s: v}, models)
                m = measurements(img, net)
                if m is not None and base is not None:
                    m["identity_distance"] = F.identity_distance(base["descriptor"], m["descriptor"])
                pair.append(m)
                if s == names[0] and len(grid) < 8:
                    row.append(img)
            sl[s].append((pair[0], pair[1], base))
        if len(grid) < 8:
            grid.append(np.concatenate(row, 1))
        print(f"{i + 1}/{len(photos)} faces, {(time.time() - t0) / (i + 1):.1f} s/face", flush=True)

    out = {"faces": len(photos), "refine_steps": refine, "units": units, "inversion": {}, "sliders": {}}
    for k, v in recs.items():
        ok = [q for q in v if q is not None]
        if not ok:
            continue
        out["inversion"][k] = {"n": len(ok), "psnr": mean([q["psnr"] for q in ok]), "ssim": mean([q["ssim"] for q in ok]),
                               "identity_distance": mean([q["identity_distance"] for q in ok]),
                               "same": round(sum(q["identity_distance"] < SAME_PERSON for q in ok) / len(v), 4),
                               "face_found": round(sum(q["face_found"] for q in ok) / len(v), 4)}
    keys = ["yaw", "pitch", "mouth_open"] + sorted(attribute_values(net, np.zeros((128, 128, 3), np.uint8)))
    bases = [b for _, _, b in sl[names[0]]] if names else []
    std = {k: max(float(np.std([b[k] for b in bases if b is not None])), STD_FLOOR.get(k, PROB_STD_FLOOR))
           for k in keys}
    own = {"yaw": "yaw", "pitch": "pitch", "mouth_open": "mouth_open"}
    for s in names:
        trip = [(lo, hi) for lo, hi, b in sl[s] if lo is not None and hi is not None]
        per_unit = {k: mean([(hi[k] - lo[k]) / (2 * units) for lo, hi in trip]) for k in keys}
        target = own.get(s, s if s in keys else None)
        other = [abs(per_unit[k]) / std[k] for k in keys if k != target and per_unit[k] is not None]
        out["sliders"][s] = {"n": len(trip), "target": target,
                             "own_per_unit": per_unit.get(target) if target else None,
                             "own_per_unit_std": round(per_unit[target] / std[target], 4) if target and per_unit.get(target) is not None else None,
                             "other_mean_abs_std": mean(other),
                             "identity_distance_at_units": mean([(lo["identity_distance"] + hi["identity_distance"]) / 2
                                                                for lo, hi in trip]),
                             "same_at_units": round(mean([((lo["identity_distance"] < SAME_PERSON)
                                                           + (hi["identity_distance"] < SAME_PERSON)) / 2 for lo, hi in trip]) or 0, 4),
                             "per_unit": per_unit}
    out["measurement_std"] = {k: round(v, 4) for k, v in std.items()}
    return out, grid


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--refine", type=int, default=100, help="Adam steps of the refined row (0: leave it out)")
    ap.add_argument("--units", type=float, default=2.0, help="slider values -units and +units")
    ap.add_argument("--shards", default=".cache/shards")
    ap.add_argument("--attributes", default="", help="AttributeNet folder (train/attributes.py) for its heads")
    ap.add_argument("--generator", default="", help="folders replacing the bundled ones (each optional)")
    ap.add_argument("--encoder", default="")
    ap.add_argument("--directions", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=os.path.join(".cache", "eval_gan.json"))
    ap.add_argument("--grid", default=os.path.join(".cache", "eval_gan_grid.png"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from train.shards import load_source

    models, net = load(args)
    d = load_source("celebamask", 128, root=args.shards)
    val = np.flatnonzero(d["split"] == 1)
    rows = np.random.default_rng(args.seed).permutation(val)[:args.n]
    photos = [cv2.resize(d["images"][r], (256, 256), interpolation=cv2.INTER_CUBIC) for r in rows]
    out, grid = evaluate(photos, models, net, args.refine, args.units)
    names = list(models.directions)
    print(format_table(out))
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    if grid and args.grid:
        from PIL import Image

        Image.fromarray(np.concatenate(grid, 0)).save(args.grid)
        print(f"grid: {args.grid} (input | encoder | refined | {names[0]} -{args.units:g} | +{args.units:g})")
    return out


def format_table(m: dict) -> str:
    lines = ["| reconstruction | n | PSNR | SSIM | dlib distance | same person | face found |", "|---|---|---|---|---|---|---|"]
    for k, v in m["inversion"].items():
        label = k if k == "encoder" else f"refined {m['refine_steps']} steps"
        lines.append(f"| {label} | {v['n']} | {v['psnr']:.2f} | {v['ssim']:.3f} | {v['identity_distance']:.3f} | "
                     f"{v['same']:.0%} | {v['face_found']:.0%} |")
    lines += ["", f"| slider | measured as | own change per unit | in std of the data | other measurements (std/unit) "
              f"| dlib distance at +-{m['units']:g} | same person |", "|---|---|---|---|---|---|---|"]
    for s, v in m["sliders"].items():
        own = "-" if v["own_per_unit"] is None else f"{v['own_per_unit']:+.3f}"
        ostd = "-" if v["own_per_unit_std"] is None else f"{v['own_per_unit_std']:+.2f}"
        lines.append(f"| {s} | {v['target'] or '-'} | {own} | {ostd} | {v['other_mean_abs_std']} | "
                     f"{v['identity_distance_at_units']} | {v['same_at_units']:.0%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
