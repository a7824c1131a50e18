"""Online reconstruction: frames in, :class:`~human3r_demo.results.FrameResult` s out, one at a time.

:class:`Reconstructor` owns everything that lives across frames - the recurrent state, the tracker,
the chunk alignment and the running focal estimate - and nothing that grows with the video: each
frame's result is handed to the caller and forgotten.

Resets (``reset_interval``) follow the reference demo: frame ``i`` (0-based) is a reset frame when
``(i + 1) % reset_interval == 0``. After it the state and pose memory return to their initial
values, and the same frame is decoded once more to start the new chunk (its output is not returned,
but it updates the state and the tracker). Camera poses of the new chunk are chained through the
reset frame's pose, so every chunk lives in the world frame of the first frame.

Adapted from fanegg/Human3R@e313921 ``demo.py`` (``prepare_input``, ``prepare_output``) and
``src/dust3r/model.py`` (``forward_recurrent_lighter``: resets and tracking); docs/ARCHITECTURE.md 10.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import roma
import torch

from .body import BodyMeshes, BodyModel, BodyModelNotFound
from .geometry import ChunkAligner, RunningFocal, intrinsics_matrix, pose_to_matrix, transform_points, weiszfeld_focal
from .model import Human3R, Human3ROutput, RecurrentState
from .model.square_view import unpad_map
from .options import RunOptions
from .preprocess import ModelInputs, prepare_frame
from .results import FrameResult, Person
from .scene import scene_point_mask
from .smoothing import PoseSmoother, smooth_people
from .smplx_layout import FOOT_JOINTS, ROTATION_SLICES
from .tracking import MatchResult, Tracker
from .world import WorldFrame

__all__ = ["ModelCall", "Reconstructor", "reconstruct"]

# the only dense head the stream reads: points in the camera frame (world points are those moved by
# the camera pose, as in the reference demo; the direct world points and the colours are unused)
STREAM_HEADS = ("self",)


@dataclass
class ModelCall:
    """One call of the model: a frame, or the second decoding of a reset frame that starts a chunk.

    Attributes:
        call_index: running count of model calls.
        frame_index: index of the source frame.
        reset: True for a reset frame (the state is re-initialised after it).
        duplicate: True for the second decoding of a reset frame (output not returned).
        inputs: the preprocessed images.
        state_in: the recurrent state the model read (``output.state`` is the one it produced).
        output: the model's raw output; match: the tracker's decision.
    """

    call_index: int
    frame_index: int
    reset: bool
    duplicate: bool
    inputs: ModelInputs
    state_in: RecurrentState
    output: Human3ROutput
    match: MatchResult


class Reconstructor:
    """Streams frames through Human3R with tracking, chunked resets and post-processing.

    Args:
        model: a loaded :class:`~human3r_demo.model.Human3R` (see :func:`human3r_demo.load_model`).
        options: the run's :class:`~human3r_demo.options.RunOptions` (the model and frame-source
            fields are not read here); keyword arguments override single fields.
        body_model: ``"auto"`` (the SMPL-X file of ``options.smplx``, ``$HUMAN3R_SMPLX_DIR`` or
            ``data/body_models``; without one, a warning and no meshes), a
            :class:`~human3r_demo.body.BodyModel`, or ``None`` for no meshes.
    """

    def __init__(
        self,
        model: Human3R,
        options: RunOptions | None = None,
        *,
        body_model: BodyModel | str | os.PathLike | None = "auto",
        **overrides: Any,
    ) -> None:
        self.model = model
        self.options = (options or RunOptions()).replace(**overrides)
        self.body = _resolve_body_model(body_model, self.options.smplx, model.device)
        o = self.options
        self.tracker = Tracker(match_threshold=o.match_threshold, dustbin=o.dustbin_score, iters=o.sinkhorn_iterations,
                               max_tracks=o.max_tracks, max_lost_frames=o.max_lost_frames)
        self.reset()

    def reset(self) -> None:
        """Start a new sequence (state, tracks, world frame and focal estimate all forgotten)."""
        self.state: RecurrentState | None = None
        self.tracker.reset()
        self.aligner = ChunkAligner()
        self.world: WorldFrame | None = None  # set by the first frame
        self.world_from_model = torch.eye(4)
        self.running_focal = RunningFocal()
        self.frames_seen = 0
        self.calls = 0
        self.smoother = PoseSmoother(max_tracks=self.options.max_tracks) if self.options.smooth else None

    # ------------------------------------------------------------------ per frame
    def process(self, frame: np.ndarray, index: int | None = None, timestamp: float | None = None) -> FrameResult:
        """Reconstruct one RGB frame (H0, W0, 3) uint8 and return its :class:`FrameResult`."""
        return self._process(frame, index, timestamp, keep_calls=False, inspect={})[0]

    def trace(
        self, frame: np.ndarray, index: int | None = None, timestamp: float | None = None, **inspect: bool
    ) -> tuple[FrameResult, list[ModelCall]]:
        """Like :meth:`process`, also returning the model calls it made (one, or two on a reset frame).

        ``inspect`` is passed to :meth:`Human3R.forward` (``output_hidden_states``,
        ``output_attentions``, ``dense_heads``) to look inside; it does not change the result.
        """
        return self._process(frame, index, timestamp, keep_calls=True, inspect=inspect)

    @torch.inference_mode()
    def _process(self, frame, index, timestamp, *, keep_calls: bool, inspect: dict) -> tuple[FrameResult, list[ModelCall]]:
        index = self.frames_seen if index is None else index
        inputs = prepare_frame(frame, self.options.size, self.model.config.mhmr_img_res)
        interval = self.options.reset_interval
        is_reset = interval is not None and (self.frames_seen + 1) % interval == 0

        call = self._call(inputs, index, reset=is_reset, duplicate=False, inspect=inspect)
        result = self._postprocess(call, timestamp)
        calls = [call] if keep_calls else []
        if is_reset:
            self.state = self.model.initial_state()
            duplicate = self._call(inputs, index, reset=False, duplicate=True, inspect=inspect)
            calls += [duplicate] if keep_calls else []
        self.frames_seen += 1
        return result, calls

    def _call(self, inputs: ModelInputs, index: int, *, reset: bool, duplicate: bool, inspect: dict) -> ModelCall:
        state_in = self.state if self.state is not None else self.model.initial_state()
        device = self.model.device
        output = self.model(
            inputs.image.to(device),
            inputs.image_mhmr.to(device),
            state_in,
            use_ttt3r=self.options.use_ttt3r,
            detection_threshold=self.options.detection_threshold,
            **{"dense_heads": STREAM_HEADS, **inspect},
        )
        self.state = output.state
        match = self.tracker.update(output.refined_human_tokens.float())
        call = ModelCall(self.calls, index, reset, duplicate, inputs, state_in, output, match)
        self.calls += 1
        return call

    # ------------------------------------------------------------------ post-processing
    def _postprocess(self, call: ModelCall, timestamp: float | None) -> FrameResult:
        out, opts = call.output, self.options
        H, W = call.inputs.hw
        pts_self = out.dense_heads.pts3d_self  # (1, H, W, 3) camera frame, float32
        camera_to_model = self.aligner(pose_to_matrix(out.camera_pose)[0], call.reset)  # the network's world
        focal = float(weiszfeld_focal(pts_self)[0])
        reported_focal = self.running_focal.update(focal, max(H, W)) if opts.shared_focal else focal
        det = out.detections
        confidence = _np(out.dense_heads.conf_self[0])
        human_mask = _np(unpad_map(det.mask.float(), H, W)[0])
        points_cam = _np(pts_self[0])
        scene_mask = scene_point_mask(
            confidence, human_mask, points_cam, confidence_threshold=opts.confidence_threshold,
            mask_threshold=opts.mask_threshold, mask_dilation=opts.mask_dilation,
        )
        bodies = self._bodies(out)
        if self.world is None:  # the first frame decides the world frame
            self.world = self._world_frame(points_cam[scene_mask], bodies)
            self.world_from_model = torch.from_numpy(self.world.from_model_world(_np(camera_to_model))).float()
        camera_to_world = self.world_from_model @ camera_to_model
        if self.smoother is not None and bodies is not None:
            bodies = self._smoothed(bodies, call, camera_to_world, timestamp)
        K = _np(intrinsics_matrix(reported_focal, H, W))
        return FrameResult(
            index=call.frame_index,
            timestamp=timestamp,
            image=call.inputs.rgb,
            camera_to_world=_np(camera_to_world),
            intrinsics=K,
            focal=focal,
            points=_np(transform_points(camera_to_world, pts_self[0])),
            confidence=confidence,
            depth=np.ascontiguousarray(points_cam[..., 2]),
            human_mask=human_mask,
            head_scores=_np(unpad_map(det.head_scores_nms.float(), H, W)[0]),
            scene_mask=scene_mask,
            people=self._people(out, bodies, call.match, camera_to_world),
            source_intrinsics=call.inputs.geometry.source_intrinsics(K),
            source_size=call.inputs.geometry.source,
            reset=call.reset,
            world_frame=self.world.name,
        )

    def _world_frame(self, scene_points_cam: np.ndarray, bodies: _Bodies | None) -> WorldFrame:
        """The run's world frame, from the first frame (in its camera frame = the first camera's)."""
        name = self.options.world
        if name == "floor":
            feet = np.empty((0, 3), np.float32)
            if bodies is not None and bodies.meshes is not None:
                feet = _np(bodies.meshes.joints[:, list(FOOT_JOINTS)]).reshape(-1, 3)
            return WorldFrame.floor(scene_points_cam, feet)
        return WorldFrame(name, np.eye(4)) if name == "model" else WorldFrame.first_camera()

    def _bodies(self, out: Human3ROutput) -> _Bodies | None:
        """The people of a frame in the camera frame: rotations, shape, head position and meshes."""
        if out.smplx is None:
            return None
        smplx = out.smplx
        rotmat = smplx.rotmat[0].float()  # (n, 53, 3, 3)
        rotvec = roma.rotmat_to_rotvec(rotmat)
        betas, expression, head = smplx.betas[0].float(), smplx.expression[0].float(), smplx.head_position[0].float()
        meshes = self.body(rotvec, betas, expression, head) if self.body is not None else None
        return _Bodies(rotmat, rotvec, betas, expression, head, meshes)

    def _smoothed(self, bodies: _Bodies, call: ModelCall, camera_to_world: torch.Tensor, timestamp: float | None) -> _Bodies:
        """``options.smooth``: the people filtered per track (human3r_demo.smoothing), then re-meshed."""
        t = timestamp if timestamp is not None else call.frame_index / (self.options.fps or 30.0)
        rotmat, betas, expression, head = smooth_people(
            self.smoother, call.match.ids.tolist(), t, camera_to_world, bodies.rotmat, bodies.betas, bodies.expression, bodies.head
        )
        rotvec = roma.rotmat_to_rotvec(rotmat)
        meshes = self.body(rotvec, betas, expression, head) if self.body is not None else None
        return _Bodies(rotmat, rotvec, betas, expression, head, meshes)

    def _people(self, out: Human3ROutput, bodies: _Bodies | None, match: MatchResult, camera_to_world: torch.Tensor) -> list[Person]:
        if bodies is None:
            return []
        rotvec, meshes = bodies.rotvec, bodies.meshes
        R, t = camera_to_world[:3, :3], camera_to_world[:3, 3]
        orient = ROTATION_SLICES["global_orient"].start
        orient_world = roma.rotmat_to_rotvec(R @ bodies.rotmat[:, orient])
        head_world = transform_points(camera_to_world, bodies.head)
        uv = out.prompts.head_uv.float()
        scores = out.detections.scores
        people = []
        for k in range(rotvec.shape[0]):
            pose = {name: _np(rotvec[k, sl]).reshape(-1, 3) for name, sl in ROTATION_SLICES.items()}
            person = Person(
                track_id=int(match.ids[k]),
                score=float(scores[k]),
                head_uv=_np(uv[k]),
                global_orient=pose["global_orient"][0],
                body_pose=pose["body_pose"],
                left_hand_pose=pose["left_hand_pose"],
                right_hand_pose=pose["right_hand_pose"],
                jaw_pose=pose["jaw_pose"][0],
                betas=_np(bodies.betas[k]),
                expression=_np(bodies.expression[k]),
                head_position=_np(bodies.head[k]),
                global_orient_world=_np(orient_world[k]),
                head_position_world=_np(head_world[k]),
            )
            if meshes is not None:
                person.transl = _np(BodyModel.standard_transl(meshes.pelvis[k], meshes.rest_pelvis[k]))
                person.transl_world = _np(R @ meshes.pelvis[k] + t - meshes.rest_pelvis[k])
                person.vertices_cam = _np(meshes.vertices[k])
                person.joints_cam = _np(meshes.joints[k])
                person.pelvis_cam = _np(meshes.pelvis[k])
                person.vertices = _np(transform_points(camera_to_world, meshes.vertices[k]))
                person.joints = _np(transform_points(camera_to_world, meshes.joints[k]))
            people.append(person)
        return people


@dataclass
class _Bodies:
    """The n people of one frame in the camera frame (Human3R's rotation order)."""

    rotmat: torch.Tensor  # (n, 53, 3, 3)
    rotvec: torch.Tensor  # (n, 53, 3)
    betas: torch.Tensor
    expression: torch.Tensor
    head: torch.Tensor  # (n, 3) the head joint
    meshes: BodyMeshes | None


def reconstruct(
    source: object,
    model: Human3R,
    options: RunOptions | None = None,
    *,
    body_model: BodyModel | str | os.PathLike | None = "auto",
    **overrides: Any,
) -> Iterator[FrameResult]:
    """Reconstruct a video, one :class:`FrameResult` per (kept) frame, as each is computed.

    Args:
        source: a video file, a folder of images, an array (T, H, W, 3) or any iterable of RGB
            frames, or a camera index (int) - see :func:`human3r_demo.io.frames`.
        model: from :func:`human3r_demo.load_model`.
        options: :class:`~human3r_demo.options.RunOptions`; keyword arguments override single
            fields (``reconstruct(video, model, reset_interval=100)``).
        body_model: see :class:`Reconstructor`.
    """
    from .io import frames  # local: io pulls in the video decoder

    recon = Reconstructor(model, options, body_model=body_model, **overrides)
    opts = recon.options
    for frame in frames(source, subsample=opts.subsample, max_frames=opts.max_frames):
        yield recon.process(frame.rgb, frame.index, frame.timestamp)


def _resolve_body_model(body_model: object, location: str | None, device: torch.device) -> BodyModel | None:
    if body_model is None or isinstance(body_model, BodyModel):
        return body_model
    if body_model == "auto":
        if location is not None:
            return BodyModel(location, device=device)
        try:
            return BodyModel(None, device=device)
        except BodyModelNotFound as err:
            warnings.warn(str(err), stacklevel=4)
            return None
    return BodyModel(body_model, device=device)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()
