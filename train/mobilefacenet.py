"""Identity loss for training: a frozen, pretrained MobileFaceNet on our aligned crops.

    python -m train.mobilefacenet --shards .cache/shards [--limit N] [--dlib] [--bgr]
    python -m train.mobilefacenet --shards .cache/shards --measure   # re-derive MEAN_POINTS

Network: MobileFaceNet (Chen et al., "MobileFaceNets: Efficient CNNs for
Accurate Real-Time Face Verification on Mobile Devices", 2018, Table 1),
exactly as `Xiaoccer/MobileFaceNet_Pytorch` builds it, so its CASIA-WebFace
checkpoint `model/best/068.ckpt` (converted to `model.safetensors`, see
`../shared/weights/README.md`) loads with strict=True: 112x96 RGB input
normalised (x - 127.5) / 128, 128-d embedding per view. As its authors do, an
image's descriptor is the concatenation of the embeddings of the image and of
its horizontal mirror (256-d), here L2-normalised.

This is a LOSS ONLY. The checkpoint has no licence: it is never imported by
`core/` or `apps/`, never shipped, never used as the identity judge (that is
dlib's descriptor in `core.face`, independent of anything trained here). The
module imports only torch, numpy and safetensors so it runs on the bare GPU
machine; the `__main__` check also needs Pillow (through `train.shards`).

Alignment. MobileFaceNet was trained on faces warped by a similarity
transform onto the 5-point 112x96 template of SphereFace (`TEMPLATE_112x96`).
Our crops are already aligned (core.face, FFHQ frame) so the five points sit
at nearly the same place in every crop: `IdentityLoss` uses ONE fixed affine,
the least-squares similarity from their mean position (`MEAN_POINTS`) to the
template, applied differentiably with `affine_grid`/`grid_sample`. Crops much
larger than the template's scale (256 px) are first downsampled with an
antialiased resize so the bilinear warp does not alias.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

INPUT_HW = (112, 96)  # MobileFaceNet input, (height, width)
EMBED_DIM = 128       # per view; IdentityLoss.embed returns 2 * EMBED_DIM (image + mirror)

# SphereFace's 5-point template for 112 (h) x 96 (w) crops, pixel-index (x, y):
# left eye, right eye, nose tip, mouth left, mouth right (left/right as seen in the image).
TEMPLATE_112x96 = np.array([[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366],
                            [33.5493, 92.3655], [62.7299, 92.2041]])

# Mean of the same five points in our canonical aligned crop, as fractions of the crop size
# (crop pixel index / S, the convention `core.face.align_matrix` scales with S). Measured with
# `python -m train.mobilefacenet --measure` (function `measure_mean_points`) on the train split
# (split == 0) of celebamask_256_* (4,045 crops) and celeba_id_128_* (4,855 crops); the points
# are the dlib-68 eye centres (mean of 36-41 / 42-47), nose tip 30, mouth corners 48 / 54 of
# the shards' `landmarks` (crop pixels at the shard's resolution; checked by drawing them).
# Per-source means differ by < 0.003 (masked faces: nose 0.02 higher, mask hides it).
MEAN_POINTS = np.array([[0.3778, 0.4807], [0.6198, 0.4810], [0.4958, 0.6213],
                        [0.3897, 0.7344], [0.6083, 0.7343]])

WEIGHTS_SUBPATH = os.path.join("mobilefacenet_casia", "model.safetensors")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------------------------- network

class ConvBlock(nn.Module):
    """Conv (optionally depthwise) -> BN -> PReLU (no PReLU when `linear`)."""

    def __init__(self, inp: int, oup: int, k, s: int, p: int, dw: bool = False, linear: bool = False):
        super().__init__()
        self.linear = linear
        self.conv = nn.Conv2d(inp, oup, k, s, p, groups=inp if dw else 1, bias=False)
        self.bn = nn.BatchNorm2d(oup)
        if not linear:
            self.prelu = nn.PReLU(oup)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.linear else self.prelu(x)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand (t) -> 3x3 depthwise (stride s) -> 1x1 linear project; PReLU."""

    def __init__(self, inp: int, oup: int, stride: int, expansion: int):
        super().__init__()
        self.connect = stride == 1 and inp == oup
        mid = inp * expansion
        self.conv = nn.Sequential(
            nn.Conv2d(inp, mid, 1, 1, 0, bias=False), nn.BatchNorm2d(mid), nn.PReLU(mid),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.PReLU(mid),
            nn.Conv2d(mid, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.connect else self.conv(x)


# (expansion t, channels c, repeats n, first stride s): the paper's Table 1
BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class MobileFaceNet(nn.Module):
    """[N, 3, 112, 96] normalised RGB -> [N, 128] embedding (not normalised).

    Spatial sizes: 112x96 -conv1 s2-> 56x48 -blocks.0 s2-> 28x24 -blocks.5 s2-> 14x12
    -blocks.12 s2-> 7x6 -linear7 (global depthwise 7x6)-> 1x1.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, dw=True)
        layers, inp = [], 64
        for t, c, n, s in BOTTLENECKS:
            for i in range(n):
                layers.append(Bottleneck(inp, c, s if i == 0 else 1, t))
                inp = c
        self.blocks = nn.Sequential(*layers)
        self.conv2 = ConvBlock(128, 512, 1, 1, 0)
        self.linear7 = ConvBlock(512, 512, (7, 6), 1, 0, dw=True, linear=True)
        self.linear1 = ConvBlock(512, EMBED_DIM, 1, 1, 0, linear=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv1(self.conv1(x))           # [N, 64, 56, 48]
        x = self.conv2(self.blocks(x))             # [N, 512, 7, 6]
        return self.linear1(self.linear7(x)).flatten(1)  # [N, 128]


def gpu_weights() -> str:
    """The identity net on the GPU machine: $FACELAB_WEIGHTS/mobilefacenet_casia/model.safetensors."""
    return os.path.join(os.environ.get("FACELAB_WEIGHTS", os.path.join("/root", "weights")), WEIGHTS_SUBPATH)


def default_weights_path() -> str:
    """FACELAB_ARCFACE, else ../shared/weights (dev machine), else $FACELAB_WEIGHTS (GPU machine; the folder
    train/gpu/paths.sh exports, /root/weights by default)."""
    env = os.environ.get("FACELAB_ARCFACE")
    if env:
        return env
    for p in (os.path.join(REPO, "..", "shared", "weights", WEIGHTS_SUBPATH), gpu_weights()):
        if os.path.isfile(p):
            return os.path.normpath(p)
    return os.path.normpath(os.path.join(REPO, "..", "shared", "weights", WEIGHTS_SUBPATH))


def load_mobilefacenet(path: str | None = None, device="cpu") -> MobileFaceNet:
    """The pretrained net, frozen (eval mode, requires_grad False), on `device`."""
    from safetensors.torch import load_file

    path = path or default_weights_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"MobileFaceNet weights not found at {path}: set FACELAB_ARCFACE to the model.safetensors of "
            f"`mobilefacenet_casia` (looked in ../shared/weights/ and {os.path.dirname(gpu_weights())}/)")
    net = MobileFaceNet()
    net.load_state_dict(load_file(path), strict=True)
    net.requires_grad_(False)
    return net.eval().to(device)


# ----------------------------------------------------------------------------------------------- alignment

def five_points(landmarks: np.ndarray) -> np.ndarray:
    """[..., 68, 2] dlib landmarks -> [..., 5, 2]: eye centres, nose tip, mouth corners."""
    lm = np.asarray(landmarks, np.float64)
    return np.stack([lm[..., 36:42, :].mean(-2), lm[..., 42:48, :].mean(-2),
                     lm[..., 30, :], lm[..., 48, :], lm[..., 54, :]], axis=-2)


def measure_mean_points(paths: list[str]) -> np.ndarray:
    """Mean five points (fractions of the crop size) over the train split of these shards -> [5, 2]."""
    total, count = np.zeros((5, 2)), 0
    for p in paths:
        size = int(os.path.basename(p).rsplit("_", 2)[-2])  # {source}_{size}_{part}.npz
        with np.load(p, allow_pickle=False) as z:
            lm, split = z["landmarks"], z["split"]
        pts = five_points(lm[split == 0]) / size
        total += pts.sum(0)
        count += len(pts)
    return total / count


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) src -> dst, [2, 3]."""
    x, y = src[:, 0], src[:, 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    # [x', y'] = [[a, -b], [b, a]] [x, y] + [tx, ty]
    A = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
    a, b, tx, ty = np.linalg.lstsq(A, np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def crop_to_template() -> np.ndarray:
    """[2, 3] similarity: crop position (fraction of S) -> template pixel index."""
    return similarity_fit(MEAN_POINTS, TEMPLATE_112x96)


def warp_theta(size: int) -> torch.Tensor:
    """`affine_grid` theta [2, 3] (align_corners=False) that samples the 112x96 input from an S px crop.

    Output pixel (j, i) = template pixel index q; crop fraction f = T^-1(q); crop pixel index f*S,
    whose grid_sample coordinate is (2 f S + 1) / S - 1.
    """
    h, w = INPUT_HW
    T = crop_to_template()
    Ainv = np.linalg.inv(T[:, :2])
    D, e = np.diag([w / 2, h / 2]), np.array([(w - 1) / 2, (h - 1) / 2])   # normalised out coord -> template px
    lin = 2 * Ainv @ D
    off = 2 * Ainv @ (e - T[:, 2]) - 1 + 1 / size
    return torch.tensor(np.concatenate([lin, off[:, None]], 1), dtype=torch.float32)


# ----------------------------------------------------------------------------------------------- loss

class IdentityLoss(nn.Module):
    """1 - cosine of MobileFaceNet descriptors of two batches of aligned crops.

    Images: float [N, 3, S, S] in [0, 1], RGB, our canonical aligned crop at any S.
    Gradients flow to the images; the net stays frozen and in eval mode even when a
    parent module calls `.train()`. Keep it beside the model being trained, never a
    submodule of it: its state_dict holds the (unshippable) MobileFaceNet weights.
    """

    def __init__(self, net: MobileFaceNet | None = None, device="cpu", bgr: bool = False):
        super().__init__()
        self.net = net if net is not None else load_mobilefacenet(device=device)
        self.net.requires_grad_(False).eval()
        self.bgr = bgr          # feed the net BGR instead of RGB (only for the colour-order check)
        self._theta: dict[int, torch.Tensor] = {}
        # template px per unit of crop size: an S px crop is scaled by native / S (~151 / S)
        self.native = float(np.sqrt(abs(np.linalg.det(crop_to_template()[:, :2]))))

    def train(self, mode: bool = True):
        super().train(mode)
        self.net.eval()
        return self

    def warp(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] in [0, 1] -> [N, 3, 112, 96] normalised net input."""
        x = x.float()  # the warp in fp32 even under autocast; the net may then run in bf16
        n, _, size, _ = x.shape
        if size not in self._theta:
            self._theta[size] = warp_theta(size)
        theta = self._theta[size].to(x.device).expand(n, 2, 3)
        if size > 1.25 * self.native:  # antialias: resize keeps normalised coordinates, so theta still holds
            s = round(self.native)
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        grid = F.affine_grid(theta, [n, 3, *INPUT_HW], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.bgr:
            x = x.flip(1)
        return (x * 255 - 127.5) / 128

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] in [0, 1] -> [N, 256] unit descriptors (image ++ mirror)."""
        x = self.warp(x)
        e = self.net(torch.cat([x, x.flip(3)]))       # [2N, 128]
        e = torch.cat(e.float().chunk(2), dim=1)      # [N, 256]
        return F.normalize(e, dim=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-sample 1 - cos, [N]. `b` may also be precomputed descriptors [N, 256] (e.g. a fixed target)."""
        eb = b if b.dim() == 2 else self.embed(b)
        return 1 - (self.embed(a) * eb).sum(1)


# ----------------------------------------------------------------------------------------------- check

def verification(emb: np.ndarray, ids: np.ndarray) -> dict:
    """All pairs: mean cosine of same / different identity, ROC AUC, best balanced accuracy."""
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sim = emb @ emb.T
    iu = np.triu_indices(len(ids), 1)
    s, same = sim[iu], (ids[:, None] == ids[None, :])[iu]
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(same[order]) / same.sum()            # TPR as the threshold lowers
    fp = np.cumsum(~same[order]) / (~same).sum()        # FPR
    tp0, fp0 = np.concatenate([[0], tp]), np.concatenate([[0], fp])
    auc = float(((fp0[1:] - fp0[:-1]) * (tp0[1:] + tp0[:-1])).sum() / 2)  # trapezoids under the ROC
    acc = (tp + 1 - fp) / 2                              # accuracy on a balanced pair set
    best = int(np.argmax(acc))
    return {"pairs_same": int(same.sum()), "pairs_diff": int((~same).sum()),
            "cos_same": float(s[same].mean()), "cos_diff": float(s[~same].mean()),
            "auc": auc, "acc": float(acc[best]), "threshold": float(s[order][best])}


def embed_images(loss: IdentityLoss, images: np.ndarray, batch: int = 32) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float() / 255
            out.append(loss.embed(x).numpy())
    return np.concatenate(out)


def dlib_embeddings(images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """dlib's descriptor of each crop from the shard's own landmarks (no re-detection)."""
    from core.face import Face, face_descriptor

    out = []
    for img, lm in zip(images, landmarks):
        x0, y0 = lm.min(0)
        x1, y1 = lm.max(0)
        face = Face(bbox=(int(x0), int(y0), int(x1), int(y1)), score=1.0, landmarks=lm, detector="shard")
        out.append(face_descriptor(np.ascontiguousarray(img), face))
    return np.stack(out)


def main(argv=None):
    import argparse
    import glob
    import time

    from train.shards import read_shard

    ap = argparse.ArgumentParser(description="verify the MobileFaceNet identity loss on the identity shard")
    ap.add_argument("--shards", default=".cache/shards")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N identities (0 = all)")
    ap.add_argument("--bgr", action="store_true", help="also score with BGR input (colour-order check)")
    ap.add_argument("--dlib", action="store_true", help="also score dlib's descriptor (needs dlib)")
    ap.add_argument("--measure", action="store_true", help="print MEAN_POINTS measured on the shards and exit")
    args = ap.parse_args(argv)

    if args.measure:
        paths = sorted(glob.glob(os.path.join(args.shards, "celebamask_256_*.npz")) +
                       glob.glob(os.path.join(args.shards, "celeba_id_128_*.npz")))
        print("shards:", [os.path.basename(p) for p in paths])
        print("MEAN_POINTS =", np.round(measure_mean_points(paths), 4).tolist())
        return

    torch.set_grad_enabled(False)
    d = read_shard(os.path.join(args.shards, "celeba_id_128_00.npz"))
    keep = np.ones(len(d["identity"]), bool)
    if args.limit:
        keep = np.isin(d["identity"], np.unique(d["identity"])[: args.limit])
    images, ids, split = d["images"][keep], d["identity"][keep], d["split"][keep]
    print(f"celeba_id_128_00: {len(ids)} crops, {len(np.unique(ids))} identities "
          f"({int((split == 1).sum())} crops / {len(np.unique(ids[split == 1]))} identities in val)")
    net = load_mobilefacenet(args.weights)
    variants = [("mobilefacenet RGB", IdentityLoss(net))]
    if args.bgr:
        variants.append(("mobilefacenet BGR", IdentityLoss(net, bgr=True)))
    results = {}
    for name, loss in variants:
        t = time.time()
        results[name] = embed_images(loss, images)
        print(f"{name}: embedded in {time.time() - t:.0f} s", flush=True)
    if args.dlib:
        t = time.time()
        results["dlib resnet"] = dlib_embeddings(images, d["landmarks"][keep])
        print(f"dlib resnet: embedded in {time.time() - t:.0f} s", flush=True)
    print(f"{'descriptor':<20}{'subset':<6}{'same':>8}{'diff':>8}{'cos same':>10}{'cos diff':>10}"
          f"{'AUC':>8}{'acc':>8}{'thr':>8}")
    for name, emb in results.items():
        for subset, m in (("all", np.ones_like(split, bool)), ("val", split == 1)):
            r = verification(emb[m], ids[m])
            print(f"{name:<20}{subset:<6}{r['pairs_same']:>8}{r['pairs_diff']:>8}{r['cos_same']:>10.3f}"
                  f"{r['cos_diff']:>10.3f}{r['auc']:>8.4f}{r['acc']:>8.4f}{r['threshold']:>8.3f}")


if __name__ == "__main__":
    main()
