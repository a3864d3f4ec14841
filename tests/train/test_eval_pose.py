"""The pure helpers of train/eval_pose.py (the issue-6 evaluation) do what its protocol says."""
import numpy as np

from train.eval_pose import hull_mask, order_faces, reference_candidates, ssim_region, summarise, target_yaw


def test_target_turns_towards_and_past_frontal_within_45():
    assert target_yaw(20.0, 30) == -10.0 and target_yaw(-20.0, 30) == 10.0 and target_yaw(0.0, 15) == -15.0
    for yaw in np.linspace(-45, 45, 19):
        for delta in (15, 30, 45):
            t = target_yaw(float(yaw), delta)
            assert abs(abs(t - yaw) - delta) < 1e-9 and abs(t) <= 45


def test_faces_cover_every_identity_before_repeating_one():
    identity = np.array([7] * 10 + [8] * 3 + [9] * 5)
    order = order_faces(identity, np.arange(len(identity)), seed=1)
    assert sorted(order.tolist()) == list(range(len(identity)))
    assert set(identity[order[:3]].tolist()) == {7, 8, 9}
    assert set(identity[order[3:6]].tolist()) == {7, 8, 9}


def test_reference_is_inside_the_window_closest_yaw_first():
    pose = np.array([[0, 0, 0], [12, 0, 0], [-4, 20, 0], [3, 5, 0], [-2, 0, 0]], np.float32)
    rows = np.arange(5)
    assert reference_candidates(rows, pose, 0.0, 0.0).tolist() == [0, 4, 3]   # 1: dyaw 12, 2: dpitch 20
    assert reference_candidates(rows, pose, 40.0, 0.0).size == 0


def test_ssim_is_one_on_identical_crops_and_lower_after_noise():
    rng = np.random.default_rng(0)
    img = (rng.random((128, 128, 3)) * 255).astype(np.uint8)
    lm = np.array([[30, 30], [100, 30], [100, 110], [30, 110]] * 17, np.float32)
    mask = hull_mask(lm, 128)
    assert mask[64, 64] and not mask[5, 5]
    face, whole = ssim_region(img, img, mask)
    assert abs(face - 1) < 1e-6 and abs(whole - 1) < 1e-6
    noisy = np.clip(img + rng.normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    assert ssim_region(img, noisy, mask)[0] < 0.9


def test_lost_faces_count_as_identity_failures_not_in_the_means():
    recs = [dict(found=True, ref=True, yaw_err=2.0, pitch_err=1.0, d_input=0.4, ref_yaw_gap=3.0, d_ref=0.7,
                 ssim_face=0.5, ssim_crop=0.4),
            dict(found=False, ref=True, ref_yaw_gap=5.0, ssim_face=0.1, ssim_crop=0.2),
            dict(found=True, ref=False, yaw_err=4.0, pitch_err=3.0, d_input=0.5)]
    s = summarise(recs)
    assert s["found"] == 2 / 3 and s["yaw_mae"] == 3.0 and s["same"] == 2 / 3
    assert s["ref_n"] == 2 and s["same_ref"] == 0.0 and s["ref_dist"] == 0.7 and abs(s["ssim_face"] - 0.3) < 1e-9
