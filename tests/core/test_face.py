"""The face front-end on real photos: detection, alignment, paste-back, pose, identity."""
import os

import numpy as np
import pytest

from core import face as F
from core.errors import FaceIndexError, NoFace
from core.imageio import load_image


def test_astronaut_face_found(astronaut):
    faces = F.detect_faces(astronaut)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].bbox
    assert 150 < (x0 + x1) / 2 < 280 and 50 < (y0 + y1) / 2 < 200  # her face, upper middle
    assert faces[0].landmarks.shape == (68, 2) and faces[0].landmarks3d.shape == (68, 3)


def test_alignment_of_celebamask_is_near_identity(celebamask):
    for i in (3, 10, 42, 100, 777):
        img = load_image(celebamask(i)[0])
        M = F.align_matrix(F.detect_faces(img)[0].landmarks, 256)
        scale = np.sqrt(abs(np.linalg.det(M[:, :2])))
        angle = np.degrees(np.arctan2(M[1, 0], M[0, 0]))
        centre_shift = np.abs(M @ [128, 128, 1] - [128, 128]).max()
        assert abs(scale - 1) < 0.08 and abs(angle) < 4 and centre_shift < 10, (i, scale, angle, centre_shift)


def test_paste_back_keeps_background_bit_identical(astronaut):
    face = F.detect_faces(astronaut)[0]
    al = F.align_face(astronaut, face, 256)
    edited = 255 - al.image
    out = F.paste_back(astronaut, edited, al.matrix)
    alpha = F.warp_mask_to_photo(F.default_paste_mask(256), al.matrix, astronaut.shape[:2])
    outside = alpha == 0
    assert outside.mean() > 0.5
    assert np.array_equal(out[outside], astronaut[outside])
    inside = alpha > 0.99
    assert np.abs(out[inside].astype(int) - astronaut[inside]).mean() > 50  # the edit is there


def test_flip_gives_opposite_yaw(celebamask):
    checked = 0
    for i in range(0, 400, 7):
        img = load_image(celebamask(i)[0])
        yaw = F.detect_faces(img)[0].yaw
        if abs(yaw) < 12:
            continue
        flipped = F.detect_faces(np.ascontiguousarray(img[:, ::-1]))[0].yaw
        assert np.sign(flipped) == -np.sign(yaw) and abs(flipped + yaw) < 5, (i, yaw, flipped)
        checked += 1
        if checked == 4:
            break
    assert checked == 4


def test_pose_round_trip_on_projected_mean_face():
    X = F.mean_face_3d()
    for yaw, pitch, roll in [(25, 0, 0), (0, 15, 0), (-30, -10, 8)]:
        P = X @ F.rotation_matrix(yaw, pitch, roll).T + [0, 0, 1000]
        uv = (P[:, :2] / P[:, 2:] * 1000 + 500).astype(np.float32)
        got = F.head_pose(uv, (1000, 1000))[:3]
        assert np.allclose(got, (yaw, pitch, roll), atol=0.5)


def test_same_identity_closer_than_different(identities):
    people = list(identities)[:3]
    emb = {}
    for p in people:
        for path in identities[p][:3]:
            img = load_image(path)
            emb.setdefault(p, []).append(F.face_descriptor(img, F.detect_faces(img)[0]))
    same = [F.identity_distance(a, b) for p in people for i, a in enumerate(emb[p]) for b in emb[p][i + 1:]]
    diff = [F.identity_distance(a, b) for i, p in enumerate(people) for q in people[i + 1:]
            for a in emb[p] for b in emb[q]]
    assert np.mean(same) < np.mean(diff) - 0.1
    assert np.median(same) < 0.6 < np.median(diff)


def test_no_face_message():
    blank = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(NoFace, match="No face"):
        F.pick_face(F.detect_faces(blank))


def test_several_faces_largest_first_and_by_index(celebamask):
    import cv2

    a = load_image(celebamask(1)[0])
    b = cv2.resize(load_image(celebamask(2)[0]), (180, 180))
    canvas = np.full((300, 520, 3), 200, np.uint8)
    canvas[20:276, 0:256] = a
    canvas[60:240, 320:500] = b
    faces = F.detect_faces(canvas)
    assert len(faces) == 2
    assert faces[0].bbox[0] < 256 < faces[1].bbox[0]  # the big one (left) first
    assert F.pick_face(faces, 1) is faces[1]
    with pytest.raises(FaceIndexError, match="2 face"):
        F.pick_face(faces, 5)
