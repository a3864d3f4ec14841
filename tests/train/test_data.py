"""Dataset builder: one real photo per source through `train.data.process`, labels warped right, split stable."""
import os

import numpy as np

from train import data as D
from train.shards import decode_jpeg, read_shard, write_shard


def test_celebamask_labels_are_class_ids_and_follow_the_crop(data_dir):
    item = D.list_source(data_dir, "celebamask")[12]
    rec = D.process(item, (256, 128))
    raw = D.read_labels(item["label_path"])
    assert set(np.unique(raw)) <= set(range(19)) and (raw == 1).mean() > 0.1  # skin is class 1
    warped = rec["labels256"]
    assert (warped == raw).mean() > 0.9           # alignment of CelebAMask-HQ is near identity
    assert rec["labels128"].shape == (128, 128)
    assert decode_jpeg(rec["jpeg256"]).shape == (256, 256, 3)
    assert rec["padded256"] < 0.1  # a slightly rotated frame leaves only the corners outside


def test_split_is_deterministic_and_identities_disjoint(data_dir):
    items = D.list_source(data_dir, "celeba_id")
    D.assign_split(items)
    again = D.list_source(data_dir, "celeba_id")
    D.assign_split(again)
    assert [i["split"] for i in items] == [i["split"] for i in again]
    val_ids = {i["identity"] for i in items if i["split"]}
    train_ids = {i["identity"] for i in items if not i["split"]}
    assert not val_ids & train_ids and len(val_ids) >= 0.1 * len(val_ids | train_ids)


def test_utk_names():
    assert D.parse_utk_name("26_1_2_20170116174525125.jpg.chip.jpg") == (26, 1, 2)
    assert D.parse_utk_name("61_1_20170109142408075.jpg.chip.jpg")[2] == -1  # malformed: no race field
    assert D.parse_utk_name("junk.jpg") == (-1, -1, -1)


def test_shard_round_trip(tmp_path, celebamask):
    from core.imageio import load_image

    img = load_image(celebamask(3)[0])
    from train.shards import encode_jpeg

    meta = {"key": np.array(["0003.jpg"]), "split": np.array([0], np.uint8)}
    path = os.path.join(tmp_path, "celebamask_256_00.npz")
    write_shard(path, [encode_jpeg(img, 95)], meta, labels=np.zeros((1, 256, 256), np.uint8))
    d = read_shard(path)
    assert d["images"].shape == (1, 256, 256, 3) and np.abs(d["images"][0].astype(int) - img).mean() < 3
    assert d["key"][0] == "0003.jpg" and d["labels"].shape == (1, 256, 256)
