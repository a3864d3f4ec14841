"""The bundled face parser on real CelebAMask-HQ validation photos (skipped until it is bundled)."""
import numpy as np
import pytest

import hub
from core.imageio import load_image
from core.labels import FACE_CLASSES, OCCLUDER, flip_labels

pytestmark = [pytest.mark.skipif(not hub.available("parser"), reason="parser checkpoint not bundled (checkpoints/parser)"),
              pytest.mark.slow]


@pytest.fixture(scope="module")
def val_items(data_dir):
    from train.data import assign_split, list_source

    items = list_source(data_dir, "celebamask")
    assign_split(items)
    return [it for it in items if it["split"] == 1]


def _face_iou(pred, gt):
    ious = []
    for c in FACE_CLASSES:
        p, g = pred == c, gt == c
        if g.sum() > 50:
            ious.append((p & g).sum() / (p | g).sum())
    return float(np.mean(ious))


def test_parser_beats_a_trivial_baseline_by_far(val_items, data_dir):
    from core.pipelines.parse import parse_photo
    from train.data import assign_split, list_source, read_labels

    train = [it for it in list_source(data_dir, "celebamask")[:400]]
    assign_split(train)
    # trivial baseline: the per-pixel most frequent training label (faces are aligned, so this is not weak)
    stack = np.stack([read_labels(it["label_path"]) for it in train if it["split"] == 0][:150])
    mode = np.apply_along_axis(lambda v: np.bincount(v, minlength=20).argmax(), 0, stack.reshape(len(stack), -1))
    mode = mode.reshape(stack.shape[1:])
    ours, base = [], []
    for it in val_items[:16]:
        gt = read_labels(it["label_path"])
        pred = parse_photo(it["path"]).labels
        ours.append(_face_iou(pred, gt))
        base.append(_face_iou(mode, gt))
    assert np.mean(ours) > 0.7 and np.mean(ours) > np.mean(base) + 0.25, (np.mean(ours), np.mean(base))


def test_flip_consistency(val_items):
    from core.pipelines.parse import parse_crops

    crops = np.stack([load_image(it["path"]) for it in val_items[:6]])
    a = parse_crops(crops)
    b = parse_crops(np.ascontiguousarray(crops[:, :, ::-1]))
    agree = np.mean([(flip_labels(bb) == aa).mean() for aa, bb in zip(a, b)])
    assert agree > 0.95


def test_pasted_object_is_labelled_occluder(val_items):
    from skimage import data

    from core.pipelines.parse import parse_crops, visible_face

    img = load_image(val_items[3]["path"]).copy()
    cup = data.coffee()[100:300, 150:400]                       # a real object: a coffee cup on a saucer
    img[150:230, 70:190] = cup[::2, ::2][:80, :120]              # over the mouth and chin
    labels = parse_crops(img)
    patch = labels[150:230, 70:190]
    assert (patch == OCCLUDER).mean() > 0.5
    assert not visible_face(labels)[150:230, 70:190].mean() > 0.3
