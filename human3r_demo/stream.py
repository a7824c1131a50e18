"""Online reconstruction: frames in, :class:`~human3r_demo.results.FrameResult` s out, one at a time.

:class:`Reconstructor` owns everything that lives across frames - the recurrent state, the tracker,
the chunk alignment and the running focal estimate - and nothing that grows with the video: each
frame's result is handed to the caller and forgotten.

Resets (``reset_interval``) follow the reference demo: frame ``i`` (0-based) is a reset frame when
``(i + 1) % reset_interval == 0``. After it the state and pose memory return to their initial
values, and the same frame is decoded once more to start the new chunk (its output is not returned,
but it updates the state and the tracker). Camera poses of the new chunk are chained through the
reset frame's pose, so every chunk lives in the world frame of the first frame.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import roma
import torch

from .body import BodyModel, BodyModelNotFound
from .geometry import ChunkAligner, RunningFocal, intrinsics_matrix, pose_to_matrix, transform_points, weiszfeld_focal
from .model import Human3R, Human3ROutput, RecurrentState
from .preprocess import FrameViews, prepare_frame, unpad_map
from .results import FrameResult, Person
from .tracking import MatchResult, Tracker

__all__ = ["Reconstructor", "ViewRecord", "reconstruct"]

MIN_SIZE, MAX_SIZE = 32, 2048


@dataclass
class ViewRecord:
    """One call of the model (a frame, or the duplicate of a reset frame that starts a chunk).

    Attributes:
        view_index: running count of model calls.
        frame_index: index of the source frame.
        reset: True for a reset frame (the state is re-initialised after it).
        duplicate: True for the second decoding of a reset frame (output not returned).
        views: the preprocessed inputs.
        state_in: the recurrent state the model read; state_out: the state it produced (before a reset).
        output: the model's raw output; match: the tracker's decision.
    """

    view_index: int
    frame_index: int
    reset: bool
    duplicate: bool
    views: FrameViews
    state_in: RecurrentState
    output: Human3ROutput
    state_out: RecurrentState
    match: MatchResult


class Reconstructor:
    """Streams frames through Human3R with tracking, chunked resets and post-processing.

    Args:
        model: a loaded :class:`~human3r_demo.model.Human3R` (see :func:`human3r_demo.load_model`).
        size: long side of the model's input image (512 as in the reference; a multiple of 16).
        use_ttt3r: TTT3R gated state update (better on long videos) instead of full overwrites.
        reset_interval: reset the state every this many frames (``None``: never).
        detection_threshold: minimum head score for a person.
        body_model: ``"auto"`` (look for SMPL-X in the usual places, continue without meshes if it is
            missing), a path, a :class:`~human3r_demo.body.BodyModel`, or ``None`` for no meshes.
        shared_focal: report one focal length per clip (running median over the frames so far)
            instead of the jittering per-frame estimate.
        max_tracks: cap on remembered tracks (``None``: unbounded, as the reference).
    """

    def __init__(
        self,
        model: Human3R,
        *,
        size: int = 512,
        use_ttt3r: bool = True,
        reset_interval: int | None = 100,
        detection_threshold: float = 0.3,
        body_model: BodyModel | str | os.PathLike | None = "auto",
        shared_focal: bool = False,
        max_tracks: int | None = 256,
    ) -> None:
        if not isinstance(size, int) or size % 16 or not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"size must be a multiple of 16 between {MIN_SIZE} and {MAX_SIZE}, got {size!r}")
        if reset_interval is not None and (not isinstance(reset_interval, int) or reset_interval < 1):
            raise ValueError(f"reset_interval must be a positive integer or None, got {reset_interval!r}")
        if not 0.0 < detection_threshold < 1.0:
            raise ValueError(f"detection_threshold must be between 0 and 1, got {detection_threshold!r}")
        self.model = model
        self.size = size
        self.use_ttt3r = use_ttt3r
        self.reset_interval = reset_interval
        self.detection_threshold = detection_threshold
        self.shared_focal = shared_focal
        self.body = _resolve_body_model(body_model, device=_model_device(model))
        self.tracker = Tracker(max_tracks=max_tracks)
        self.reset()

    def reset(self) -> None:
        """Start a new sequence (state, tracks, world frame and focal estimate all forgotten)."""
        self.state: RecurrentState | None = None
        self.tracker.reset()
        self.aligner = ChunkAligner()
        self.running_focal = RunningFocal()
        self.frames_seen = 0
        self.views_run = 0

    # ------------------------------------------------------------------ per frame
    def process(self, frame: np.ndarray, index: int | None = None, timestamp: float | None = None) -> FrameResult:
        """Reconstruct one RGB frame (H0, W0, 3) uint8 and return its :class:`FrameResult`."""
        return self.process_views(frame, index, timestamp, keep_views=False)[0]

    def process_views(
        self,
        frame: np.ndarray,
        index: int | None = None,
        timestamp: float | None = None,
        *,
        keep_views: bool = True,
        **step_options: bool,
    ) -> tuple[FrameResult, list[ViewRecord]]:
        """Like :meth:`process`, also returning the model calls it made (one, or two on a reset frame).

        ``step_options`` are passed to :meth:`Human3R.step` (``output_hidden_states``,
        ``output_attentions``) for inspection.
        """
        index = self.frames_seen if index is None else index
        views = prepare_frame(frame, self.size, self.model.config.mhmr_img_res)
        device = _model_device(self.model)
        image, image_mhmr = views.image.to(device), views.image_mhmr.to(device)
        is_reset = self.reset_interval is not None and (self.frames_seen + 1) % self.reset_interval == 0

        records = []
        record = self._run(views, image, image_mhmr, index, is_reset, False, **step_options)
        result = self._postprocess(record, timestamp)
        if keep_views:
            records.append(record)
        if is_reset:
            self.state = self.model.initial_state()
            duplicate = self._run(views, image, image_mhmr, index, False, True, **step_options)
            if keep_views:
                records.append(duplicate)
        self.frames_seen += 1
        return result, records

    def _run(self, views, image, image_mhmr, index, is_reset, duplicate, **step_options) -> ViewRecord:
        state_in = self.state if self.state is not None else self.model.initial_state()
        output, state_out = self.model.step(
            image,
            image_mhmr,
            state_in,
            use_ttt3r=self.use_ttt3r,
            detection_threshold=self.detection_threshold,
            **step_options,
        )
        self.state = state_out
        match = self.tracker.update(output.refined_human_tokens)
        record = ViewRecord(self.views_run, index, is_reset, duplicate, views, state_in, output, state_out, match)
        self.views_run += 1
        return record

    # ------------------------------------------------------------------ post-processing
    @torch.inference_mode()
    def _postprocess(self, record: ViewRecord, timestamp: float | None) -> FrameResult:
        out = record.output
        H, W = record.views.hw
        pts_self = out.heads.pts3d_self.float()  # (1, H, W, 3) camera frame
        camera_to_world = self.aligner(pose_to_matrix(out.heads.camera_pose.float())[0], record.reset)
        focal = float(weiszfeld_focal(pts_self)[0])
        reported_focal = self.running_focal.update(focal, max(H, W)) if self.shared_focal else focal
        det = out.detections
        head_scores = unpad_map(det.head_scores_nms.float(), H, W)[0]
        human_mask = unpad_map(det.mask.float(), H, W)[0]
        people = self._people(out, record.match, camera_to_world)
        return FrameResult(
            index=record.frame_index,
            timestamp=timestamp,
            image=record.views.rgb,
            camera_to_world=_np(camera_to_world),
            intrinsics=_np(intrinsics_matrix(reported_focal, H, W)),
            focal=focal,
            points=_np(transform_points(camera_to_world, pts_self[0])),
            confidence=_np(out.heads.conf_self[0]),
            depth=_np(pts_self[0, ..., 2]),
            human_mask=_np(human_mask),
            head_scores=_np(head_scores),
            people=people,
            reset=record.reset,
        )

    def _people(self, out: Human3ROutput, match: MatchResult, camera_to_world: torch.Tensor) -> list[Person]:
        if out.smplx is None:
            return []
        smplx = out.smplx
        rotvec = roma.rotmat_to_rotvec(smplx.rotmat[0].float())  # (n, 53, 3)
        betas, expression, head = smplx.betas[0].float(), smplx.expression[0].float(), smplx.transl[0].float()
        R, t = camera_to_world[:3, :3], camera_to_world[:3, 3]
        orient_world = roma.rotmat_to_rotvec(R @ smplx.rotmat[0, :, 0].float())
        head_world = transform_points(camera_to_world, head)
        meshes = self.body(rotvec, betas, expression, head) if self.body is not None else None
        uv = out.prompts.head_uv
        scores = out.detections.head_scores_nms[0][out.detections.cells[:, 0], out.detections.cells[:, 1]]
        people = []
        for k in range(rotvec.shape[0]):
            person = Person(
                track_id=int(match.ids[k]),
                score=float(scores[k]),
                head_uv=_np(uv[k]),
                global_orient=_np(rotvec[k, 0]),
                body_pose=_np(rotvec[k, 1:22]),
                left_hand_pose=_np(rotvec[k, 22:37]),
                right_hand_pose=_np(rotvec[k, 37:52]),
                jaw_pose=_np(rotvec[k, 52]),
                betas=_np(betas[k]),
                expression=_np(expression[k]),
                head_position=_np(head[k]),
                global_orient_world=_np(orient_world[k]),
                head_position_world=_np(head_world[k]),
            )
            if meshes is not None:
                transl = BodyModel.standard_transl(meshes.pelvis[k], meshes.rest_pelvis[k])
                person.transl = _np(transl)
                person.transl_world = _np(R @ meshes.pelvis[k] + t - meshes.rest_pelvis[k])
                person.vertices_cam = _np(meshes.vertices[k])
                person.joints_cam = _np(meshes.joints[k])
                person.pelvis_cam = _np(meshes.pelvis[k])
                person.vertices = _np(transform_points(camera_to_world, meshes.vertices[k]))
                person.joints = _np(transform_points(camera_to_world, meshes.joints[k]))
            people.append(person)
        return people


def reconstruct(
    source: object,
    model: Human3R,
    *,
    size: int = 512,
    use_ttt3r: bool = True,
    reset_interval: int | None = 100,
    detection_threshold: float = 0.3,
    subsample: int = 1,
    max_frames: int | None = None,
    body_model: BodyModel | str | os.PathLike | None = "auto",
    shared_focal: bool = False,
    max_tracks: int | None = 256,
) -> Iterator[FrameResult]:
    """Reconstruct a video, one :class:`FrameResult` per (kept) frame, as each is computed.

    Args:
        source: a video file, a folder of images, an array (T, H, W, 3) or any iterable of RGB
            frames, or a camera index (int) - see :func:`human3r_demo.io.frames`.
        model: from :func:`human3r_demo.load_model`.
        subsample: keep every ``subsample``-th frame; max_frames: stop after this many kept frames.
        Other options: see :class:`Reconstructor`.
    """
    from .io import frames  # local: io pulls in the video decoder

    recon = Reconstructor(
        model,
        size=size,
        use_ttt3r=use_ttt3r,
        reset_interval=reset_interval,
        detection_threshold=detection_threshold,
        body_model=body_model,
        shared_focal=shared_focal,
        max_tracks=max_tracks,
    )
    for frame in frames(source, subsample=subsample, max_frames=max_frames):
        yield recon.process(frame.rgb, frame.index, frame.timestamp)


def _resolve_body_model(body_model: object, device: torch.device) -> BodyModel | None:
    if body_model is None or isinstance(body_model, BodyModel):
        return body_model
    if body_model == "auto":
        try:
            return BodyModel(None, device=device)
        except BodyModelNotFound as err:
            warnings.warn(str(err), stacklevel=3)
            return None
    return BodyModel(body_model, device=device)


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()

