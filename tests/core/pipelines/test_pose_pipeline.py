"""Pose editing (core/pipelines/pose.py): the face's pose, the target geometry, the 2D baseline, the pipeline,
the `pose` command and the tab.

Pure parts run always, on real photos (skimage's astronaut, CelebAMask-HQ from the shared data). The pipeline,
the CLI and the tab also run with tiny untrained models served under the real names through temporary registry
entries (as test_deocclusion_pipeline.py does): shapes, paste-back, reported poses, errors. What the trained
models do (the output is a face, turned the way asked, of the same person) is checked only when
`hub.available("pose-sampler")` and `hub.available("pose-inpainter")`; until their weights are bundled those
tests skip. Val photos used there: CelebAMask-HQ 0015, 0046 (split 1 of the shards: never trained on).
"""
from __future__ import annotations

import os
import re

import cv2
import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import hub
from cli import main as cli
from core import face as F
from core.errors import FaceLabError
from core.imageio import load_image
from core.models.pose import PixelAttentionSampler, PoseInpainter
from core.pipelines import pose as P
from hub import registry, store
from tests.conftest import build_without_models, serve_models

MODELS = ("pose-sampler", "pose-inpainter")
needs_models = pytest.mark.skipif(not all(hub.available(m) for m in MODELS),
                                  reason="the pose weights are not bundled yet (hub.available('pose-sampler') / "
                                         "('pose-inpainter') is False): checkpoints/pose-*/ + registry entries")
# Tiny but at the pipeline's 128 px (P.SIZE); the same widths as the trainer's --smoke run.
TINY_S = dict(image_size=128, widths=(8, 16, 24, 32), blocks=1, cond_dim=32, flow_res=64)
TINY_G = dict(image_size=128, widths=(8, 16, 24, 32, 32), blocks=1, cond_dim=32, id_dim=32, id_width=8,
              distill_dim=8)
TURNED = (8, 17, 28)     # CelebAMask-HQ photos with clearly turned faces (|yaw| > 15) and clean landmarks
VAL = (15, 46)


def nose_offset(lm: np.ndarray) -> np.ndarray:
    """Nose tip relative to the midpoint of the eye centres, pixels [2]."""
    lm = np.asarray(lm)
    return lm[30] - (lm[36:42].mean(0) + lm[42:48].mean(0)) / 2


def aligned(image: np.ndarray):
    """(face, aligned 128 px crop, its landmarks [68, 2], the face's (yaw, pitch))."""
    face = F.pick_face(F.detect_faces(image))
    al = F.align_face(image, face, P.SIZE)
    lm = (al.matrix[:, :2] @ face.landmarks.T + al.matrix[:, 2:]).T.astype(np.float32)
    return face, al, lm, P.face_pose(face)


def far_from_face(res: P.PoseResult, shape, margin: int = 3) -> np.ndarray:
    """bool [H, W]: photo pixels the pasted output crop cannot touch (its feathered mask, dilated)."""
    alpha = F.warp_mask_to_photo(F.default_paste_mask(P.SIZE), res.out_matrix, shape[:2]) > 0
    return ~cv2.dilate(alpha.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)).astype(bool)


@pytest.fixture(scope="session")
def small_astronaut(astronaut) -> np.ndarray:
    """The astronaut at 256 px: detection is ~20x faster than at 512 (no upsampling of a large photo)."""
    return cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def tiny_pair():
    torch.manual_seed(0)
    return PixelAttentionSampler(**TINY_S).eval(), PoseInpainter(**TINY_G).eval()


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory, tiny_pair):
    root = tmp_path_factory.mktemp("pose_ckpt")
    for name, model in zip(MODELS, tiny_pair):
        model.save_pretrained(str(root / name), card="# tiny, untrained\n")
    return root


def _sampler():
    return PixelAttentionSampler


def _inpainter():
    return PoseInpainter


@pytest.fixture
def tiny_models(tiny_root, monkeypatch):
    """The hub serves the tiny untrained models as "pose-sampler" / "pose-inpainter" (temporary registry entries)."""
    yield from serve_models(monkeypatch, tiny_root, dict(zip(MODELS, (_sampler, _inpainter))))


# ------------------------------------------------------------------------------------------- the face's pose

def test_face_pose_does_not_depend_on_where_the_face_sits(astronaut):
    """Crop-level angles: the same face in a corner or in the middle of a larger photo reads the same pose
    (the photo-level angles of core.face do not: they include the perspective of the face's position)."""
    poses, photo_yaws = [], []
    for x, y in ((0, 0), (388, 388)):
        canvas = np.zeros((900, 900, 3), np.uint8)
        canvas[y:y + 512, x:x + 512] = astronaut
        face = F.pick_face(F.detect_faces(canvas))
        poses.append(P.face_pose(face))
        photo_yaws.append(face.yaw)
    (y0, p0), (y1, p1) = poses
    assert abs(y0) < 8 and abs(p0) < 12                                 # a near-frontal face
    assert abs(y1 - y0) < 1.5 and abs(p1 - p0) < 2.5, poses
    assert abs(photo_yaws[1] - photo_yaws[0]) > 10, photo_yaws        # what face_pose corrects for


def test_face_pose_on_turned_faces_flips_with_the_photo(celebamask):
    for i in TURNED:
        image = load_image(celebamask(i)[0])
        yaw, pitch = P.face_pose(F.pick_face(F.detect_faces(image)))
        yaw_f, pitch_f = P.face_pose(F.pick_face(F.detect_faces(np.ascontiguousarray(image[:, ::-1]))))
        assert abs(yaw) > 15, (i, yaw)
        assert abs(yaw + yaw_f) < 3 and abs(pitch - pitch_f) < 2, (i, yaw, yaw_f, pitch, pitch_f)


# ------------------------------------------------------------------------------------------- geometry

def test_check_angles():
    assert P.check_angles(45, -60) == (45.0, -60.0)
    assert P.check_angles("10", np.float32(-3.5)) == (10.0, -3.5)
    for yaw, pitch in ((float("nan"), 0), (0, float("inf")), (P.MAX_ANGLE + 0.5, 0), (0, -61), (None, 0),
                       ("abc", 0)):
        with pytest.raises(FaceLabError):
            P.check_angles(yaw, pitch)


def test_same_pose_gives_the_input_landmarks(celebamask):
    for i in (VAL[0], TURNED[0]):
        _, _, lm, (yaw, pitch) = aligned(load_image(celebamask(i)[0]))
        g = P.crop_geometry(lm, yaw, pitch, yaw, pitch)
        tgt = g["tgt_lm3d"][0, :, :2].numpy()
        assert np.abs(tgt - lm).max() < 1.0, (i, np.abs(tgt - lm).max())
        assert np.abs(g["reframe"] - np.eye(2, 3)).max() < 0.02 * P.SIZE / 100


def test_target_pose_moves_the_nose_the_right_way(astronaut):
    """core.face's convention: yaw > 0 = face turned to the image's right, pitch > 0 = looking up."""
    _, _, lm, (yaw, pitch) = aligned(astronaut)
    before = nose_offset(lm)

    def moved(dy, dp):
        tgt = P.crop_geometry(lm, yaw, pitch, yaw + dy, pitch + dp)["tgt_lm3d"][0, :, :2].numpy()
        assert (tgt > -5).all() and (tgt < P.SIZE + 5).all()               # still framed like an aligned crop
        return nose_offset(tgt) - before

    assert moved(30, 0)[0] > 4
    assert moved(-30, 0)[0] < -4
    assert moved(0, 20)[1] < -2
    assert moved(0, -20)[1] > 2


def test_warp_2d_identity_and_motion(celebamask):
    _, al, lm, _ = aligned(load_image(celebamask(VAL[1])[0]))
    same = P.warp_2d(al.image, lm, lm)
    assert same.shape == al.image.shape and same.dtype == np.uint8
    assert np.abs(same.astype(int) - al.image).mean() < 0.5
    # a red dot on the nose tip goes where the nose tip's landmark goes (all landmarks shifted, border fixed)
    marked = al.image.copy()
    cv2.circle(marked, tuple(int(v) for v in np.round(lm[30])), 2, (255, 0, 0), -1)
    tgt = lm + np.float32([5.0, -3.0])
    out = P.warp_2d(marked, lm, tgt)
    red = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] < 60)
    ys, xs = np.nonzero(red)
    src_ys, src_xs = np.nonzero(np.all(marked == (255, 0, 0), -1))
    assert abs(len(xs) - len(src_xs)) <= 4                                  # moved, not smeared
    assert np.hypot(xs.mean() - src_xs.mean() - 5, ys.mean() - src_ys.mean() + 3) < 1.0
    assert np.abs(out[0, 0].astype(int) - marked[0, 0]).max() <= 2           # a fixed border point


# ------------------------------------------------------------------------------------------- the pipeline, tiny models

def test_edit_photo_shapes_poses_and_paste_back(small_astronaut, tiny_pair):
    face, al, _, src = aligned(small_astronaut)
    res = P.edit_photo(small_astronaut, 20, None, models=tiny_pair)
    assert res.result.shape == small_astronaut.shape and res.result.dtype == np.uint8
    for im in (res.crop, res.output, res.warped):
        assert im.shape == (P.SIZE, P.SIZE, 3) and im.dtype == np.uint8
    assert res.mask.shape == (P.SIZE, P.SIZE) and 0 <= res.mask.min() and res.mask.max() <= 1
    assert res.landmarks.shape == res.target_landmarks.shape == (68, 2)
    assert np.allclose(res.source_pose, src) and res.target_pose == (20.0, pytest.approx(src[1]))  # pitch kept
    assert np.array_equal(res.crop, al.image) and np.allclose(res.matrix, al.matrix)
    far = far_from_face(res, small_astronaut.shape)
    assert far.mean() > 0.5 and np.array_equal(res.result[far], small_astronaut[far])    # bit for bit away from it
    assert (res.result[~far] != small_astronaut[~far]).any()
    # the target moved: the output crop's nose sits further right of the eyes than the input's
    assert nose_offset(res.target_landmarks)[0] > nose_offset(res.landmarks)[0] + 3


def test_edit_photo_same_pose_keeps_the_frame_and_guides(small_astronaut, celebamask, tiny_pair):
    res = P.edit_photo(small_astronaut, models=tiny_pair)                     # no target: the face's own pose
    assert np.allclose(res.target_pose, res.source_pose)
    lm = res.face.landmarks.astype(np.float64)
    to_in, to_out = (lm @ m[:, :2].T + m[:, 2] for m in (res.matrix, res.out_matrix))
    assert np.abs(to_out - to_in).max() < 1.0                          # the output crop is the input's frame
    guide = celebamask(TURNED[0])[0]
    res = P.edit_photo(small_astronaut, guide=guide, models=tiny_pair)
    assert np.allclose(res.target_pose, P.guide_pose(guide))
    with pytest.raises(FaceLabError):
        P.edit_photo(small_astronaut, P.MAX_ANGLE + 10, 0, models=tiny_pair)
    with pytest.raises(FaceLabError):
        P.edit_photo(np.full((200, 200, 3), 128, np.uint8), 10, 0, models=tiny_pair)   # no face


# ------------------------------------------------------------------------------------------- CLI and tab, tiny models

def test_cli_with_tiny_models(tiny_models, small_astronaut, tmp_path, capsys):
    src = tmp_path / "astronaut.png"
    Image.fromarray(small_astronaut[:250, :230]).save(src)
    out, crop = tmp_path / "out.png", tmp_path / "crop.png"
    assert cli(["pose", str(src), "--yaw", "20", "--out", str(out), "--aligned-out", str(crop)]) == 0
    assert np.asarray(Image.open(out)).shape == (250, 230, 3)
    assert np.asarray(Image.open(crop)).shape == (P.SIZE, P.SIZE, 3)
    printed = capsys.readouterr().out
    assert "-> +20.0" in printed and "pitch" in printed
    # a guide photo sets both angles; it cannot be combined with --yaw/--pitch; some target is needed
    assert cli(["pose", str(src), "--guide", str(src), "--out", str(out)]) == 0
    assert cli(["pose", str(src), "--guide", str(src), "--yaw", "5", "--out", str(out)]) == 2
    assert cli(["pose", str(src), "--out", str(out)]) == 2
    assert cli(["pose", str(src), "--pitch", "75", "--out", str(out)]) == 2
    assert "degrees" in capsys.readouterr().err
    # folder batch: one output per image, a failure reported and counted
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(small_astronaut).save(folder / "a.png")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(folder / "blank.png")
    assert cli(["pose", str(folder), "--pitch", "10", "--out", str(tmp_path / "outs"),
                "--aligned-out", str(tmp_path / "crops")]) == 1
    assert os.listdir(tmp_path / "outs") == os.listdir(tmp_path / "crops") == ["a.png"]
    assert "blank.png: error" in capsys.readouterr().err


def test_tab_functions(tiny_models, small_astronaut, tmp_path):
    from apps import pose as A

    src = tmp_path / "astronaut.png"
    Image.fromarray(small_astronaut).save(src)
    yaw, pitch, note = A.photo_pose(str(src), 0)
    own = P.face_pose(F.pick_face(F.detect_faces(small_astronaut)))
    assert yaw["value"] == round(own[0], 1) and pitch["value"] == round(own[1], 1) and "yaw" in note
    assert A.photo_pose(str(src), 0, str(src))[:2] == (gr.skip(), gr.skip())   # a guide holds the sliders
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(blank)
    assert "No face" in A.photo_pose(str(blank), 0)[2] and "does not exist" in A.photo_note(str(src), 4)
    locked = A.guide_changed(str(src))
    assert locked[0]["interactive"] is False and locked[0]["value"] == round(own[0], 1)
    assert A.guide_changed(None)[0]["interactive"] is True
    result, crop, warped, mask, lm_in, lm_out, line = A.pose(str(src), 20, 0, None, 0)
    assert result.shape == small_astronaut.shape and crop.shape == warped.shape == (P.SIZE, P.SIZE, 3)
    assert mask.shape == (P.SIZE, P.SIZE) and mask.dtype == np.uint8
    assert lm_in.shape == lm_out.shape == (2 * P.SIZE, 2 * P.SIZE, 3)
    assert "Target yaw **+20.0°**" in line and "Measured on the output" in line
    for args in ((None, 20, 0, None, 0), (str(tmp_path / "missing.png"), 20, 0, None, 0),
                 (str(src), 90, 0, None, 0), (str(src), 0, 0, None, 3)):
        with pytest.raises(gr.Error):
            A.pose(*args)


def test_measured_line_on_a_real_face(small_astronaut, tiny_pair):
    """The tab's measured line, given an output the front-end can read (the input crop itself, as an ideal
    "no change" edit would give): the measured pose is the input's and the identity distance ~0."""
    import dataclasses

    from apps import pose as A

    res = P.edit_photo(small_astronaut, models=tiny_pair)
    line = A.measured_line(dataclasses.replace(res, output=res.crop))
    found = re.search(r"Measured on the output: yaw \*\*([-+\d.]+)°\*\*, pitch \*\*([-+\d.]+)°", line)
    assert found, line
    yaw, pitch = float(found[1]), float(found[2])
    assert abs(yaw - res.source_pose[0]) < 3 and abs(pitch - res.source_pose[1]) < 4, (line, res.source_pose)
    assert "**0.00** (same person" in line


def test_tab_builds(tiny_models):
    from apps import pose as A

    with gr.Blocks() as blocks:
        photo, result = A.build()
    assert isinstance(photo, gr.Image) and isinstance(result, gr.Image)
    names = [d.api_name for d in blocks.fns.values() if d.api_name]
    assert "pose" in names
    labelled = (gr.Image, gr.Slider, gr.Number, gr.Button)
    for block in blocks.blocks.values():
        if isinstance(block, labelled) and not isinstance(block, gr.Button):
            assert block.label, block
        if isinstance(block, gr.Button):
            assert block.value, block


def test_tab_without_models_says_so(monkeypatch):
    from apps import pose as A

    notes = [b.value for b in build_without_models(monkeypatch, A, MODELS) if isinstance(b, gr.Markdown)]
    assert any("not available yet" in n for n in notes)


# ------------------------------------------------------------------------------------------- the trained models

@pytest.mark.slow
@needs_models
def test_real_models_turn_the_face_the_way_asked(celebamask):
    for i in VAL:
        image = load_image(celebamask(i)[0])
        moved = {}
        for step in (-20, 20):
            src_yaw, src_pitch = P.face_pose(F.pick_face(F.detect_faces(image)))
            res = P.edit_photo(image, src_yaw + step, src_pitch)
            found = P.measure_crop(res.output)
            assert found is not None, (i, step, "the front-end finds no face in the output")
            moved[step] = P.face_pose(found)[0] - src_yaw
            dist = P.identity_distance(res.crop, res.output)
            # a regression guard, not the goal (< 0.6 in >= 95 % at 15 deg): the README's eval table has the rates
            assert dist is not None and dist < 0.7, (i, step, dist)
        assert moved[20] > 5 and moved[-20] < -5, (i, moved)


@pytest.mark.slow
@needs_models
def test_real_models_keep_the_photo_away_from_the_face(astronaut):
    res = P.edit_photo(astronaut, 15, 0)
    far = far_from_face(res, astronaut.shape)
    assert np.array_equal(res.result[far], astronaut[far])


@pytest.mark.slow
@needs_models
def test_real_models_cli_writes_the_input_size(astronaut, tmp_path, capsys):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(astronaut[:500, :460]).save(src)
    assert cli(["pose", str(src), "--yaw", "20", "--out", str(out), "--measure"]) == 0
    assert np.asarray(Image.open(out)).shape == (500, 460, 3)
    assert "measured: yaw" in capsys.readouterr().out


def test_edit_crop_asks_for_yaw_gain_times_the_change(small_astronaut, tiny_pair):
    """The models are conditioned on landmarks turned by YAW_GAIN x the requested change (they under-turn)."""
    _, al, lm, (yaw, pitch) = aligned(small_astronaut)
    got = {g: P.edit_crop(al.image, lm, yaw, pitch, yaw + 20, pitch, tiny_pair, yaw_gain=g)["tgt_lm"]
           for g in (None, 1.0, P.YAW_GAIN)}
    want = P.crop_geometry(lm, yaw, pitch, yaw + 20 * P.YAW_GAIN, pitch, P.SIZE)["tgt_lm3d"][0, :, :2].numpy()
    assert P.YAW_GAIN > 1.0
    np.testing.assert_allclose(got[None], want, atol=1e-4)        # the default is the module's gain
    np.testing.assert_allclose(got[P.YAW_GAIN], want, atol=1e-4)
    # a larger gain moves the nose tip (landmark 30) further in the direction of the turn
    nose = {g: got[g][30, 0] for g in got}
    src = P.crop_geometry(lm, yaw, pitch, yaw, pitch, P.SIZE)["tgt_lm3d"][0, 30, 0].item()
    assert abs(nose[P.YAW_GAIN] - src) > abs(nose[1.0] - src) + 0.5, (src, nose)
