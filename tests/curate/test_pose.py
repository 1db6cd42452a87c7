import numpy as np

from genhuman.curate.pose import save_clip_pose


def test_pose_of_a_clip_in_openpose_layout(tmp_path, base):
    path = save_clip_pose(list(base.frames[:3]), 25.0, tmp_path / "clip.pose.npz")
    data = np.load(path)
    assert set(data.files) == {"body", "body_score", "hands", "hands_score", "face", "face_score", "fps"}
    assert data["body"].shape == (3, 18, 2) and data["hands"].shape == (3, 2, 21, 2)
    assert data["face"].shape == (3, 68, 2) and float(data["fps"]) == 25.0
    nose = data["body"][:, 0]  # OpenPose-18 keypoint 0 is the nose: inside the face, upper half
    assert (data["body_score"][:, 0] > 0).all() and (0.2 < nose[:, 0]).all() and (nose[:, 0] < 0.8).all()
