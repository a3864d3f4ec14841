"""GAN inversion with attribute sliders (issue 5): photo -> aligned 128 px crop -> MTV-TSA encoder -> w+ ->
(optional per-image refinement of w+) -> StyleGAN2 reconstruction -> InterFaceGAN slider edits -> paste-back.

Models (registry names; loaded lazily, once per process, through core.loading):
- "stylegan"     core/models/stylegan.py StyleGAN2Generator, 128 px, w+ = [num_ws = 12, 512];
- "mtv-encoder"  core/models/encoder.py MTVEncoder (Yu & Wang, seed 002): aligned crop -> w+ (and z_c when
                 trained with `predict_const`);
- "directions"   a folder written by train/directions.py (directions.safetensors + directions.json; not a
                 ConfigModule, so it is found with core.loading.resolve and read with core.models.directions).

Slider units (directions.json): 1 unit = one standard deviation of <w - w_avg, n> over the generator's samples,
so +-3 spans the data; 0 = no change. Each slider edits only its own w+ layers (InterFaceGAN eq. 4 restricted to
`layers`). One slider move is one synthesis pass.

The crop is core.face.align_face at 128 px, the frame of the 128 px shards the generator and the encoder were
trained on. The optional refinement ("optimisation mode" of the seed) runs Adam on w+ from the encoder's code
for N steps with MSE + (1 - SSIM) on the crop; no face-recognition network is used (the project's training-time
MobileFaceNet stays in train/). Identity is *measured* with dlib's descriptor (core.face), never optimised.

Deliberately different from the seed: the generator runs in fp32 with constant noise (noise_mode "const"),
so a code always decodes to the same image; the encoder's z_n (noise weights) are not predicted.
Everything runs on the CPU except the refinement, which uses the GPU when there is one (a 128 px G costs
~0.12 s per pass on a 2-core CPU, ~0.17 s per refinement step when idle).

A code travels as .npz (`dump_code` / `load_code`): ws float32 [num_ws, w_dim], optional const, the photo
-> crop matrix and the photo size (for paste-back), and JSON metadata (generator name and fingerprint, how the
code was made). core writes no files: the CLI and the app write the bytes.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
import torch

from .. import face as F
from ..errors import FaceLabError, ModelUnavailable
from ..imageio import MAX_PIXELS, load_image
from ..metrics import psnr, ssim
from ..npz import Member, read_npz

GENERATOR, ENCODER, DIRECTIONS = "stylegan", "mtv-encoder", "directions"
SIZE = 128               # the generator's and the encoder's crop side
IDENTITY_SIZE = 256      # crops are upscaled to this for dlib's descriptor (it wants ~150 px chips)
MAX_UNITS = 10.0         # slider values beyond this leave the generator's data far behind
REFINE_LR = 0.01         # Adam step on w+ (Image2StyleGAN / PTI use 0.01 in W+)
MAX_REFINE = 1000
WEAK_SLIDER_Z = 0.05     # a slider moving its attribute less than this many data stds per unit is marked weak
CODE_VERSION = 1


# ------------------------------------------------------------------------------------------------ models

@dataclass
class GANModels:
    """What the pipeline runs; tests pass tiny ones, the app and CLI load the registry's (`load_models`)."""
    G: torch.nn.Module                               # StyleGAN2Generator, eval, fp32
    E: torch.nn.Module | None = None                 # MTVEncoder for G, or None (sampling / editing only)
    directions: dict[str, dict] | None = None        # core.models.directions.load_directions, or None
    directions_meta: dict = field(default_factory=dict)  # directions.json without "sliders"
    name: str = GENERATOR                            # generator name recorded in codes


def device() -> torch.device:
    """Inference device: the CPU (fp32). A slider move is one 128 px synthesis pass, cheaper than moving to and
    from a GPU that ZeroGPU would have to attach per request."""
    return torch.device("cpu")


def refine_device() -> torch.device:
    """Where the refinement runs: backward passes through G are ~15x a forward, so the GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _load(name: str):
    from ..loading import ModelNotAvailable, load_model

    try:
        return load_model(name, device=device())
    except ModelNotAvailable as e:
        raise ModelUnavailable(str(e)) from e


def _folder(name: str) -> str:
    from ..loading import ModelNotAvailable, resolve

    try:
        return str(resolve(name))
    except ModelNotAvailable as e:
        raise ModelUnavailable(str(e)) from e


@functools.lru_cache(maxsize=4)
def read_directions(folder: str) -> tuple[dict[str, dict], dict]:
    """A directions folder -> (load_directions(folder) on the CPU, directions.json without "sliders"); cached."""
    from ..models.directions import load_directions

    with open(os.path.join(folder, "directions.json")) as f:
        meta = {k: v for k, v in json.load(f).items() if k != "sliders"}
    return load_directions(folder), meta


def load_models(encoder: bool = True, directions: bool = True) -> GANModels:
    """The registry's models (load_model caches G and E; directions are cached per folder)."""
    G = _load(GENERATOR).requires_grad_(False)
    E = _load(ENCODER).requires_grad_(False) if encoder else None
    dirs, meta = read_directions(_folder(DIRECTIONS)) if directions else (None, {})
    models = GANModels(G=G, E=E, directions=dirs, directions_meta=meta)
    check_models(models)
    return models


def check_models(models: GANModels) -> None:
    """The encoder and the directions must belong to this generator (shapes; FaceLabError otherwise)."""
    G = models.G
    if models.E is not None and (models.E.num_ws != G.num_ws or models.E.config["img_resolution"] != G.img_resolution
                                 or models.E.config["w_dim"] != G.w_dim):
        raise FaceLabError(f"The encoder ({models.E.config['img_resolution']} px, {models.E.num_ws} ws) does not fit "
                           f"the generator ({G.img_resolution} px, {G.num_ws} ws).")
    for name, d in (models.directions or {}).items():
        a, b = d["layers"]
        if d["n"].shape != (G.w_dim,) or not 0 <= a <= b < G.num_ws:
            raise FaceLabError(f"Slider {name!r} (layers {a}-{b}, {tuple(d['n'].shape)}) does not fit the generator "
                               f"({G.num_ws} ws of {G.w_dim}).")


def _models(models: GANModels | None, encoder: bool = False, directions: bool = False) -> GANModels:
    models = load_models(encoder=encoder, directions=directions) if models is None else models
    if encoder and models.E is None:
        raise ModelUnavailable("Inverting a photo needs the MTV encoder (registry name 'mtv-encoder'), which is "
                               "not available.")
    if directions and models.directions is None:
        raise ModelUnavailable("Editing needs the attribute directions (registry name 'directions'), which are "
                               "not available.")
    return models


def generator_fingerprint(G) -> str:
    """16 hex digits identifying the generator's weights (its mean w and learned constant)."""
    h = hashlib.sha256()
    for t in (G.w_avg, G.synthesis_network.blocks[0].const):
        h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ sliders

@dataclass
class Slider:
    name: str
    layers: tuple[int, int]       # w+ layers edited, inclusive
    std: float                    # |w| step of one unit along the unit normal n
    kind: str                     # "binary" or "regression" (the attribute head it was fitted to)
    per_unit: float | None        # measured change of the attribute per unit (directions.json), if recorded
    unit: str                     # the attribute's unit (core.models.attributes.ATTRIBUTES)
    own_z: float | None = None    # that change in standard deviations of the attribute over the generator's faces

    @property
    def weak(self) -> bool:
        """The slider barely moves its attribute (the generator rarely draws it, e.g. eyeglasses): say so."""
        return self.own_z is not None and abs(self.own_z) < WEAK_SLIDER_Z

    @property
    def info(self) -> str:
        """One line for a slider's help text."""
        effect = f"; +1 = {self.per_unit:+.3g} {self.unit}" if self.per_unit is not None else ""
        weak = " (weak: barely changes it on this generator)" if self.weak else ""
        return f"w+ layers {self.layers[0]}-{self.layers[1]}{effect}{weak}"


def sliders(models: GANModels | None = None) -> list[Slider]:
    """The sliders of the directions, in the file's order (train/directions.py writes the important ones first)."""
    from ..models.attributes import ATTRIBUTES

    models = _models(models, directions=True)
    units = {name: unit for name, _, unit in ATTRIBUTES}
    summary = models.directions_meta.get("metrics_summary", {})
    out = []
    for name, d in models.directions.items():
        per_unit, own_z = (summary.get(name, {}).get(k) for k in ("own_per_unit", "own_z"))
        out.append(Slider(name=name, layers=tuple(d["layers"]), std=float(d["std"]), kind=str(d.get("kind", "")),
                          per_unit=None if per_unit is None else float(per_unit), unit=units.get(name, ""),
                          own_z=None if own_z is None else float(own_z)))
    return out


def parse_edits(text: str | list[str] | None) -> dict[str, float]:
    """"age=2,smile=-1" (or a list of such strings) -> {"age": 2.0, "smile": -1.0}."""
    items = [text] if isinstance(text, str) else list(text or [])
    values: dict[str, float] = {}
    for part in (p.strip() for item in items for p in item.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            values[name.strip()] = float(value)
        except ValueError:
            raise FaceLabError(f"Cannot read {part!r}: write NAME=VALUE, e.g. age=2,smile=-1.") from None
    return values


def check_edits(values: dict[str, float], models: GANModels) -> dict[str, float]:
    """Known slider names and finite values within +-MAX_UNITS, else a FaceLabError naming the sliders."""
    known = models.directions or {}
    unknown = [n for n in values if n not in known]
    if unknown:
        raise FaceLabError(f"Unknown slider(s) {', '.join(unknown)}; the sliders are: {', '.join(known) or 'none'}.")
    for name, v in values.items():
        if v is None or not math.isfinite(float(v)) or abs(float(v)) > MAX_UNITS:
            raise FaceLabError(f"Slider {name}: {v!r} is not a number within +-{MAX_UNITS:g} units.")
    return {n: float(v) for n, v in values.items()}


# ------------------------------------------------------------------------------------------------ codes

@dataclass
class LatentCode:
    """A face in the generator's latent space, and where it came from."""
    ws: np.ndarray                                # [num_ws, w_dim] float32, w+ (absolute)
    const: np.ndarray | None = None               # [C4, 4, 4] float32 constant input (encoder z_c), or None
    generator: str = GENERATOR
    fingerprint: str = ""                         # generator_fingerprint of the G it belongs to ("" = unchecked)
    source_size: tuple[int, int] | None = None    # (H, W) of the photo it was inverted from
    matrix: np.ndarray | None = None              # [2, 3] photo -> crop (core.face.align_face), for paste-back
    meta: dict = field(default_factory=dict)      # how it was made: {"from": "photo"|"sample", seed, steps, ...}


def dump_code(code: LatentCode) -> bytes:
    """The code as .npz bytes (numpy arrays and one JSON string; nothing pickled)."""
    arrays = {"ws": np.asarray(code.ws, np.float32)}
    if code.const is not None:
        arrays["const"] = np.asarray(code.const, np.float32)
    if code.matrix is not None:
        arrays["matrix"] = np.asarray(code.matrix, np.float64)
    if code.source_size is not None:
        arrays["source_size"] = np.asarray(code.source_size, np.int64)
    meta = {"version": CODE_VERSION, "generator": code.generator, "fingerprint": code.fingerprint, **code.meta}
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    return buf.getvalue()


MAX_ABS_LATENT = 100.0   # |w| of the generator's samples stays below ~4 (slider edits add a few tens at most)
MAX_CODE_BYTES = 4 << 20  # uncompressed: a 12 x 512 code is 24 KiB
CODE_MEMBERS = {         # what a code .npz may hold (core.npz checks each header before reading it)
    "meta": Member("U", 0),
    "ws": Member("f", 2, max_side=4096),
    "const": Member("f", 3, max_side=1024),
    "matrix": Member("f", 2, shape=(2, 3)),
    "source_size": Member("iu", 1, shape=(2,)),
}


def load_code(source: str | os.PathLike | bytes) -> LatentCode:
    """.npz path or bytes (dump_code) -> LatentCode; FaceLabError for anything else (checked before loading:
    core.npz.read_npz; then every field's values)."""
    name = "The code" if isinstance(source, bytes) else f"The file {os.path.basename(os.fspath(source))}"
    try:
        arrays = read_npz(source, CODE_MEMBERS, MAX_CODE_BYTES, required=("meta", "ws"))
        meta = json.loads(str(arrays.pop("meta")))
        return _code_from(arrays, meta)
    except (FaceLabError, ValueError, TypeError, OverflowError) as e:
        raise FaceLabError(f"{name} is not a FaceLab latent code (.npz written by `python -m cli invert` or "
                           f"the Invert & edit tab): {e}") from e


def _finite(name: str, a: np.ndarray, bound: float) -> np.ndarray:
    a = np.asarray(a, np.float64)
    if not np.isfinite(a).all():
        raise FaceLabError(f"{name!r} holds NaN or infinite values")
    if a.size and np.abs(a).max() > bound:
        raise FaceLabError(f"{name!r} holds values up to {np.abs(a).max():.3g}, beyond +-{bound:g}")
    return a


def _scalar(v) -> bool:
    return v is None or isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v))


def _code_from(arrays: dict[str, np.ndarray], meta) -> LatentCode:
    if not isinstance(meta, dict):
        raise FaceLabError("its metadata is not a JSON object")
    if meta.get("version", CODE_VERSION) != CODE_VERSION:
        raise FaceLabError(f"code version {meta.get('version')!r}, this program reads version {CODE_VERSION}")
    for key in ("generator", "fingerprint"):
        if not isinstance(meta.get(key, ""), str):
            raise FaceLabError(f"metadata {key!r} must be a string")
    edits = meta.get("edits", {})
    if not isinstance(edits, dict) or not all(isinstance(k, str) and isinstance(v, (int, float))
                                              and not isinstance(v, bool) and math.isfinite(v)
                                              for k, v in edits.items()):
        raise FaceLabError("metadata 'edits' must map slider names to numbers")
    bad = [k for k, v in meta.items() if k != "edits" and not _scalar(v)]
    if bad:
        raise FaceLabError(f"metadata {bad[0]!r} must be a string, number or null")
    ws = _finite("ws", arrays["ws"], MAX_ABS_LATENT)
    const = arrays.get("const")
    if const is not None:
        const = _finite("const", const, MAX_ABS_LATENT).astype(np.float32)
    matrix = arrays.get("matrix")
    if matrix is not None:
        matrix = _finite("matrix", matrix, 1e6)
    size = arrays.get("source_size")
    if size is not None:
        h, w = int(size[0]), int(size[1])
        if not (0 < h and 0 < w and h * w <= MAX_PIXELS):
            raise FaceLabError(f"'source_size' {h}x{w} is not the size of a photo")
        size = (h, w)
    return LatentCode(ws=ws.astype(np.float32), const=const, generator=meta.pop("generator", GENERATOR),
                      fingerprint=meta.pop("fingerprint", ""), matrix=matrix, source_size=size,
                      meta={k: v for k, v in meta.items() if k != "version"})


def check_code(code: LatentCode, models: GANModels) -> None:
    """The code must fit this generator (shape; same weights when the code records a fingerprint)."""
    G = models.G
    if code.ws.shape != (G.num_ws, G.w_dim):
        raise FaceLabError(f"The code's w+ is {tuple(code.ws.shape)}; the generator needs ({G.num_ws}, {G.w_dim}).")
    if code.fingerprint and code.fingerprint != generator_fingerprint(G):
        raise FaceLabError(f"The code was made with another version of the {code.generator!r} generator "
                           f"(fingerprint {code.fingerprint}); invert the photo again.")


def _ws(code: LatentCode) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(code.ws, np.float32))[None].to(device())  # [1, num_ws, w_dim]


def _const(code: LatentCode) -> torch.Tensor | None:
    return None if code.const is None else torch.from_numpy(np.asarray(code.const, np.float32))[None].to(device())


# ------------------------------------------------------------------------------------------------ images

def to_tensor(crop: np.ndarray) -> torch.Tensor:
    """[S, S, 3] uint8 -> [1, 3, S, S] float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float().div(127.5).sub(1)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[1, 3, S, S] in ~[-1, 1] -> [S, S, 3] uint8."""
    return ((x[0].float().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def synthesize(ws: torch.Tensor, const: torch.Tensor | None, G) -> np.ndarray:
    """ws [1, num_ws, w_dim] -> [R, R, 3] uint8: one constant-noise pass (grouped modconv, faster at N = 1).

    Every image of this pipeline comes from here, so the same code always gives the same pixels."""
    return to_uint8(G.synthesis(ws, noise_mode="const", const=const, fused_modconv=True))


def reconstruction_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The refinement's loss: MSE + (1 - SSIM) of images in [-1, 1] (measured in [0, 1]) -> scalar."""
    a, b = (x + 1) / 2, (y + 1) / 2
    return (a - b).square().mean() + (1 - ssim(a, b)).mean()


# ------------------------------------------------------------------------------------------------ quality

@dataclass
class Quality:
    """How faithful a reconstruction is to the aligned input crop."""
    psnr: float                   # dB over the whole crop
    ssim: float                   # SSIM over the whole crop (Gaussian 11 px window), 1 = identical
    identity_distance: float      # dlib descriptor distance on 256 px upscales; < 0.6 reads as the same person
    identity_similarity: float    # cosine of the two descriptors, 1 = identical
    face_found: bool              # dlib found a face in the reconstruction (else the input's landmarks were used)

    def to_json(self) -> dict:
        return {"psnr": round(self.psnr, 3), "ssim": round(self.ssim, 4),
                "identity_distance": round(self.identity_distance, 4),
                "identity_similarity": round(self.identity_similarity, 4), "face_found": self.face_found}


def _face_in_crop(face: F.Face, matrix: np.ndarray, scale: float) -> F.Face:
    """The photo's face mapped into the (upscaled) crop: landmarks and box through the alignment."""
    lm = (face.landmarks.astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]) * scale
    x0, y0, x1, y1 = face.bbox
    corners = (np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64) @ matrix[:, :2].T + matrix[:, 2]) * scale
    (bx0, by0), (bx1, by1) = corners.min(0), corners.max(0)
    return F.Face(bbox=(int(round(bx0)), int(round(by0)), int(round(bx1)), int(round(by1))), score=face.score,
                  landmarks=lm.astype(np.float32), detector=face.detector)


def measure(crop: np.ndarray, reconstruction: np.ndarray, face: F.Face, matrix: np.ndarray) -> Quality:
    """PSNR / SSIM on the crop, and dlib identity of the two on 256 px upscales.

    Both upscales are read the same way (dlib's HOG detector and landmarks), so a crop against itself measures
    0; where dlib finds no face, the photo's own landmarks mapped into the crop stand in."""
    with torch.no_grad():
        s = float(ssim(to_tensor(crop).add(1).div(2), to_tensor(reconstruction).add(1).div(2))[0])
    k = IDENTITY_SIZE / crop.shape[0]
    side = (IDENTITY_SIZE, IDENTITY_SIZE)
    up = [cv2.resize(im, side, interpolation=cv2.INTER_CUBIC) for im in (crop, reconstruction)]
    mapped = _face_in_crop(face, matrix, k)
    faces = [F.detect_faces(im, cnn_fallback=False) for im in up]
    d_in, d_out = (F.face_descriptor(im, found[0] if found else mapped) for im, found in zip(up, faces))
    found = faces[1]
    return Quality(psnr=psnr(crop, reconstruction), ssim=s, identity_distance=F.identity_distance(d_in, d_out),
                   identity_similarity=F.identity_similarity(d_in, d_out), face_found=bool(found))


# ------------------------------------------------------------------------------------------------ inversion

Progress = Callable[[int, int, float], None]  # (step done, steps, loss) after each refinement step


@dataclass
class Inversion:
    crop: np.ndarray              # [128, 128, 3] uint8 aligned input
    reconstruction: np.ndarray    # [128, 128, 3] uint8 G(code)
    pasted: np.ndarray            # [H, W, 3] uint8 the photo with the reconstruction pasted back
    code: LatentCode              # ws (encoder's, or refined), matrix, photo size
    quality: Quality
    losses: list[float]           # refinement loss before step 1 and after each step (empty without refinement)
    face: F.Face
    matrix: np.ndarray            # [2, 3] photo -> crop


def align(image: np.ndarray, face_index: int = 0) -> tuple[F.Face, F.AlignedFace]:
    """Face `face_index` (0 = largest) of an RGB photo and its canonical 128 px crop."""
    face = F.pick_face(F.detect_faces(image), face_index)
    return face, F.align_face(image, face, SIZE)


@torch.no_grad()
def encode(crop: np.ndarray, models: GANModels) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[128, 128, 3] uint8 -> (ws [1, num_ws, w_dim], const [1, C4, 4, 4] or None), the encoder's code."""
    out = models.E(to_tensor(crop).to(device()))
    return out.ws.float(), None if out.const is None else out.const.float()


def refine_ws(crop: np.ndarray, ws: torch.Tensor, const: torch.Tensor | None, steps: int, G,
           progress: Progress | None = None, lr: float = REFINE_LR) -> tuple[torch.Tensor, list[float]]:
    """Adam on w+ (const fixed) for `steps` steps from `ws` towards the crop -> (refined ws on the CPU, losses).

    losses[0] is the starting loss and losses[i] the loss after step i (the loss of the ws then held)."""
    if not 0 <= steps <= MAX_REFINE:
        raise FaceLabError(f"Refinement steps must be between 0 and {MAX_REFINE}, got {steps}.")
    if steps == 0:
        return ws, []
    dev = refine_device()
    Gr = G if next(G.parameters()).device == dev else copy.deepcopy(G).to(dev)
    Gr.requires_grad_(False)  # gradients for w+ only
    target = to_tensor(crop).to(dev)
    const = None if const is None else const.to(dev)
    w = ws.detach().clone().to(dev).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999))
    losses = []
    for step in range(steps + 1):
        loss = reconstruction_loss(Gr.synthesis(w, noise_mode="const", const=const), target)
        losses.append(float(loss.detach()))
        if step == steps:  # the last evaluation only measures the final ws
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step + 1, steps, losses[-1])
    return w.detach().to(device()), losses


def invert_photo(photo, refine: int = 0, progress: Progress | None = None, face: int = 0,
                 models: GANModels | None = None) -> Inversion:
    """Any photo -> inversion of face `face` (0 = largest): crop, code, reconstruction, quality, paste-back.

    refine: Adam steps on w+ after the encoder (0 = the encoder's code as is)."""
    models = _models(models, encoder=True)
    image = load_image(photo)
    found, al = align(image, face)
    ws, const = encode(al.image, models)
    ws, losses = refine_ws(al.image, ws, const, int(refine), models.G, progress)
    reconstruction = synthesize(ws, const, models.G)
    code = LatentCode(ws=ws[0].cpu().numpy(), const=None if const is None else const[0].cpu().numpy(),
                      generator=models.name, fingerprint=generator_fingerprint(models.G),
                      source_size=image.shape[:2], matrix=al.matrix,
                      meta={"from": "photo", "face": int(face), "refine_steps": int(refine)})
    pasted = F.paste_back(image, reconstruction, al.matrix)
    return Inversion(crop=al.image, reconstruction=reconstruction, pasted=pasted,
                     code=code, quality=measure(al.image, reconstruction, found, al.matrix), losses=losses,
                     face=found, matrix=al.matrix)


# ------------------------------------------------------------------------------------------------ edit / sample

def edit_code(code: LatentCode, values: dict[str, float], models: GANModels | None = None) -> LatentCode:
    """The code with slider `values` applied (slider units, 0 = no change) on each slider's own w+ layers."""
    from ..models.directions import apply_edits

    models = _models(models, directions=True)
    check_code(code, models)
    values = check_edits(values, models)
    ws = apply_edits(_ws(code), models.directions, values)
    meta = dict(code.meta, edits={**code.meta.get("edits", {}), **{k: v for k, v in values.items() if v}})
    return LatentCode(ws=ws[0].cpu().numpy(), const=code.const, generator=code.generator,
                      fingerprint=code.fingerprint, source_size=code.source_size, matrix=code.matrix, meta=meta)


def decode(code: LatentCode, models: GANModels | None = None) -> np.ndarray:
    """A code -> [R, R, 3] uint8 (one synthesis pass)."""
    models = _models(models)
    check_code(code, models)
    return synthesize(_ws(code), _const(code), models.G)


def edit(code: LatentCode, values: dict[str, float], models: GANModels | None = None) -> np.ndarray:
    """A code and slider values -> edited face [R, R, 3] uint8; all values 0 gives the reconstruction itself."""
    models = _models(models, directions=True)
    return decode(edit_code(code, values, models), models)


def paste(photo, image: np.ndarray, code: LatentCode) -> np.ndarray:
    """Put a crop decoded from `code` back into the photo it was inverted from (feathered, core.face.paste_back);
    pixels outside the crop's footprint stay bit-identical."""
    if code.matrix is None or code.source_size is None:
        raise FaceLabError("This code was not inverted from a photo (a random sample?): nothing to paste it into.")
    photo = load_image(photo)
    if tuple(photo.shape[:2]) != tuple(code.source_size):
        h, w = code.source_size
        raise FaceLabError(f"The code was inverted from a {w}x{h} photo; this photo is "
                           f"{photo.shape[1]}x{photo.shape[0]}.")
    return F.paste_back(photo, image, np.asarray(code.matrix, np.float64))


@dataclass
class Sample:
    image: np.ndarray             # [R, R, 3] uint8
    code: LatentCode


def sample(seed: int, truncation: float = 1.0, models: GANModels | None = None) -> Sample:
    """A random face: z ~ N(0, I) from a CPU torch.Generator seeded with `seed` (one seed, one face, any device),
    w = w_avg + truncation (mapping(z) - w_avg) on every layer (1 = no truncation, 0 = the mean face)."""
    try:
        psi = float(truncation)
    except (TypeError, ValueError):
        psi = float("nan")
    if not 0.0 <= psi <= 2.0:
        raise FaceLabError(f"Truncation must be a number between 0 and 2 (1 = none), got {truncation!r}.")
    try:
        seed = int(seed)
    except (TypeError, ValueError, OverflowError):
        raise FaceLabError(f"The seed must be a whole number, got {seed!r}.") from None
    if not 0 <= seed < 2 ** 63:
        raise FaceLabError(f"The seed must be a whole number between 0 and 2^63 - 1, got {seed}.")
    models = _models(models)
    G = models.G
    z = torch.randn(1, G.z_dim, generator=torch.Generator(device="cpu").manual_seed(seed))  # [1, z_dim], CPU
    with torch.no_grad():
        ws = G.mapping(z.to(device()), truncation_psi=psi).float()  # [1, num_ws, w_dim]
    code = LatentCode(ws=ws[0].cpu().numpy(), generator=models.name, fingerprint=generator_fingerprint(G),
                      meta={"from": "sample", "seed": seed, "truncation": psi})
    return Sample(image=synthesize(ws, None, G), code=code)


__all__ = ["GANModels", "Inversion", "LatentCode", "Quality", "Sample", "Slider", "check_code", "decode",
           "dump_code", "edit", "edit_code", "invert_photo", "load_code", "load_models", "parse_edits", "paste",
           "refine_ws", "sample", "sliders"]
