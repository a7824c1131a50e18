"""Public names renamed for one name per concept (CHANGELOG.md) still work for one release, and warn."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from human3r_demo.checkpoints.random_init import tiny_random_config
from human3r_demo.model import Human3R, Human3ROutput
from human3r_demo.model.dense_heads import DenseHeadsOutput
from human3r_demo.model.detection import HeadDetections
from human3r_demo.model.smplx_head import SMPLXPrediction


def _blank(cls, **values):
    return cls(**{f.name: values.get(f.name) for f in dataclasses.fields(cls)})


def test_old_output_names_warn_and_give_the_new_values() -> None:
    dense = DenseHeadsOutput(pts3d_self=torch.zeros(1, 2, 2, 3), conf_self=torch.ones(1, 2, 2))
    out = _blank(Human3ROutput, dense_heads=dense, camera_pose=torch.arange(7.0)[None],
                 camera_pose_raw=torch.ones(1, 7), dinov2_tokens=torch.ones(1, 4, 8))
    with pytest.warns(DeprecationWarning, match="Human3ROutput.dense_heads"):
        heads = out.heads
    assert heads.pts3d_self is dense.pts3d_self and heads.camera_pose is out.camera_pose
    assert heads.pose_raw is out.camera_pose_raw
    with pytest.warns(DeprecationWarning, match="dinov2_tokens"):
        assert out.human_tokens is out.dinov2_tokens

    smplx = _blank(SMPLXPrediction, head_position=torch.ones(1, 1, 3))
    with pytest.warns(DeprecationWarning, match="head_position"):
        assert smplx.transl is smplx.head_position
    detections = _blank(HeadDetections, detection_tokens=torch.ones(1, 1, 8))
    with pytest.warns(DeprecationWarning, match="detection_tokens"):
        assert detections.human_tokens is detections.detection_tokens


def test_old_module_names_warn() -> None:
    with torch.device("meta"):
        model = Human3R(tiny_random_config())
    with pytest.warns(DeprecationWarning, match="Human3R.dense_heads"):
        assert model.heads is model.dense_heads
    assert not any(k.startswith("heads.") for k in model.state_dict())
    import human3r_demo.model.dense_heads as dense_heads

    with pytest.warns(DeprecationWarning, match="DenseHeadsOutput"):
        assert dense_heads.HeadsOutput is DenseHeadsOutput
