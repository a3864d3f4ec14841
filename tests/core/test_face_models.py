"""The learned front-end (core.face_models, issue 17) on real held-out photos: found where dlib is, and under
a drawn mask; points agree with dlib on a clean face; the visibility head tells a masked mouth from open eyes."""
import glob
import os

import cv2
import numpy as np
import pytest

from core import face as F
from core import face_models as FM
from core.imageio import load_image

pytestmark = pytest.mark.skipif(FM.models() is None, reason="front-end checkpoints not bundled")


def test_astronaut_points_agree_with_dlib(astronaut):
    ours, theirs = F.detect_faces(astronaut), F.detect_faces_dlib(astronaut)
    assert len(ours) == 1 and ours[0].detector == "learned"
    iod = np.linalg.norm(theirs[0].landmarks[36] - theirs[0].landmarks[45])
    err = np.linalg.norm(ours[0].landmarks - theirs[0].landmarks, axis=1).mean() / iod
    assert err < 0.05, err   # within 5% of the inter-ocular distance on a clean frontal face
    assert abs(ours[0].yaw - theirs[0].yaw) < 3 and abs(ours[0].pitch - theirs[0].pitch) < 3
    assert (ours[0].visibility > 0.5).mean() > 0.95


def draw_mask(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """A pale blue surgical-style mask from the jaw (points 2..14) up to the nose bridge (point 29)."""
    out = img.copy()
    poly = np.concatenate([lm[2:15], lm[[29]]]).astype(np.int32)
    cv2.fillPoly(out, [poly], (170, 200, 230))
    return out


def held_out_celebamask(n: int) -> list[str]:
    from train.data import assign_split, list_source

    items = list_source(os.path.join("..", "shared", "data"), "celebamask")
    assign_split(items)
    return [it["path"] for it in items if it["split"] == 1][:n]


@pytest.mark.skipif(not glob.glob("../shared/data/celebamask_hq/images/*.jpg"), reason="no shared data")
def test_drawn_masks_found_and_mouth_marked_hidden():
    found, mouth_hidden, eyes_seen = 0, [], []
    paths = held_out_celebamask(12)
    for p in paths:
        img = load_image(p)
        clean = F.detect_faces_dlib(img)
        if not clean:
            continue
        masked = draw_mask(img, clean[0].landmarks)
        faces = F.detect_faces(masked)
        if faces and faces[0].detector == "learned":
            found += 1
            mouth_hidden.append((faces[0].visibility[48:68] < 0.5).mean())
            eyes_seen.append((faces[0].visibility[36:48] > 0.5).mean())
    assert found >= len(paths) - 1, found
    assert np.mean(mouth_hidden) > 0.8 and np.mean(eyes_seen) > 0.9, (mouth_hidden, eyes_seen)


@pytest.mark.skipif(not glob.glob("../shared/data/cfp/images/*/profile/*.jpg"), reason="no shared data")
def test_held_out_profiles_found_and_turned():
    from train.frontend_data import list_items

    items = [it for it in list_items(os.path.join("..", "shared", "data"), "cfp")
             if it["split"] == 1 and it["view"] == "profile"][:10]
    yaws = []
    for it in items:
        faces = F.detect_faces(load_image(it["path"]))
        if faces:
            yaws.append(abs(faces[0].yaw))
    assert len(yaws) >= 9, len(yaws)
    assert np.median(yaws) > 40, yaws


def test_mirrored_photo_gives_mirrored_points(astronaut):
    a = F.detect_faces(astronaut)[0]
    b = F.detect_faces(np.ascontiguousarray(astronaut[:, ::-1]))[0]
    assert b.detector == "learned" and abs(a.yaw + b.yaw) < 4, (a.yaw, b.yaw)


def test_blank_and_noise_have_no_face():
    rng = np.random.default_rng(0)
    for img in (np.full((300, 300, 3), 128, np.uint8), (rng.random((240, 320, 3)) * 255).astype(np.uint8)):
        assert FM.find_faces(img) == []
