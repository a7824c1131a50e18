"""Identity tracking across frames by optimal transport over refined human tokens.

Human3R gives every person in every frame a refined token (the human prompt after the decoder).
People are matched to remembered tracks by a SuperGlue-style Sinkhorn with a dustbin row and
column (so "no match" is an option), kept only if the match is mutual and confident; everyone else
gets a fresh id. Tracks that find no match stay in memory, so a person who leaves and comes back
gets their id again.

The reference keeps unmatched tracks forever. Here that memory can be bounded
(``max_tracks``, ``max_lost_frames``); with both ``None`` the tracker is exactly the reference's.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/model.py`` (the tracking in
``forward_recurrent_lighter``) and ``src/dust3r/utils/image.py`` (``log_optimal_transport``);
docs/ARCHITECTURE.md 9.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["DUSTBIN_SCORE", "MATCH_THRESHOLD", "SINKHORN_ITERATIONS", "MatchResult", "Tracker", "log_optimal_transport"]

# the reference's tracking constants (``forward_recurrent_lighter``); RunOptions offers each as an option
MATCH_THRESHOLD = 0.2  # minimum (m+n) * P of a mutual match
DUSTBIN_SCORE = -10.0  # Sinkhorn score of "no match", on the -distance scale
SINKHORN_ITERATIONS = 20


def log_optimal_transport(scores: Tensor, dustbin: float, iters: int) -> Tensor:
    """Sinkhorn in log space with one dustbin row and column.

    Args:
        scores: (B, m, n) affinities between m remembered tracks and n detections.
        dustbin: score of matching anything to the dustbin (the same on the raw score scale).
        iters: Sinkhorn iterations.

    Returns:
        (B, m+1, n+1) log transport plan scaled by ``m + n`` (``exp`` of an entry is ``(m+n)`` times
        the transport probability; each real row and column carries mass 1 in those units and the
        dustbins carry n and m).
    """
    B, m, n = scores.shape
    one = scores.new_tensor(1)
    ms, ns = m * one, n * one
    alpha = scores.new_tensor(dustbin)
    couplings = torch.cat(
        [
            torch.cat([scores, alpha.expand(B, m, 1)], dim=-1),
            torch.cat([alpha.expand(B, 1, n), alpha.expand(B, 1, 1)], dim=-1),
        ],
        dim=1,
    )
    norm = -(ms + ns).log()
    log_mu = torch.cat([norm.expand(m), ns.log()[None] + norm])[None].expand(B, -1)
    log_nu = torch.cat([norm.expand(n), ms.log()[None] + norm])[None].expand(B, -1)
    u, v = torch.zeros_like(log_mu), torch.zeros_like(log_nu)
    for _ in range(iters):
        u = log_mu - torch.logsumexp(couplings + v.unsqueeze(1), dim=2)
        v = log_nu - torch.logsumexp(couplings + u.unsqueeze(2), dim=1)
    return couplings + u.unsqueeze(2) + v.unsqueeze(1) - norm


@dataclass
class MatchResult:
    """One frame of tracking.

    Attributes:
        ids: (n,) int64 track id of each detection, in detection order.
        cost: (1, m, n) ``-distance`` between remembered and current tokens, ``None`` without memory.
        log_assign: (1, m+1, n+1) Sinkhorn output including the dustbins, ``None`` without memory.
        matched: (n,) bool, True where the id came from memory (False: a new track).
    """

    ids: Tensor
    cost: Tensor | None = None
    log_assign: Tensor | None = None
    matched: Tensor | None = None


class Tracker:
    """Assigns stable integer ids to the people of successive frames.

    Args:
        match_threshold: minimum ``(m+n) * P`` of a mutual match (0.2 in the reference).
        dustbin: Sinkhorn dustbin score on the ``-distance`` scale (-10 in the reference).
        iters: Sinkhorn iterations (20).
        max_tracks: remember at most this many tracks (the most recently seen first); ``None``: no cap.
        max_lost_frames: forget a track unseen for more than this many frames; ``None``: never.
    """

    def __init__(
        self,
        match_threshold: float = MATCH_THRESHOLD,
        dustbin: float = DUSTBIN_SCORE,
        iters: int = SINKHORN_ITERATIONS,
        max_tracks: int | None = 256,
        max_lost_frames: int | None = None,
    ) -> None:
        if max_tracks is not None and max_tracks < 1:
            raise ValueError("max_tracks must be at least 1 (or None for no cap)")
        self.match_threshold = match_threshold
        self.dustbin = dustbin
        self.iters = iters
        self.max_tracks = max_tracks
        self.max_lost_frames = max_lost_frames
        self.reset()

    def reset(self) -> None:
        """Forget every track (ids restart from 0)."""
        self.tokens: Tensor | None = None  # (1, m, C) remembered tokens, current matches first
        self.track_ids: Tensor | None = None  # (1, m) int64
        self.last_seen: list[int] = []  # frame counter of the last match, per remembered track
        self.next_id = 0
        self.frame = -1

    @property
    def num_remembered(self) -> int:
        return 0 if self.track_ids is None else int(self.track_ids.shape[1])

    def update(self, tokens: Tensor) -> MatchResult:
        """Match this frame's refined human tokens ``(1, n, C)`` (n may be 0) to the tracks."""
        self.frame += 1
        n = tokens.shape[1]
        if n == 0:
            self._forget_stale()
            return MatchResult(ids=torch.empty(0, dtype=torch.long, device=tokens.device))
        if self.tokens is None:
            ids = torch.arange(self.next_id, self.next_id + n, device=tokens.device)
            self.next_id += n
            self._remember(tokens, ids[None], [self.frame] * n)
            return MatchResult(ids=ids, matched=torch.zeros(n, dtype=torch.bool, device=tokens.device))

        cost = -torch.cdist(self.tokens, tokens, p=2)
        log_assign = log_optimal_transport(cost, self.dustbin, self.iters)
        scores = log_assign[:, :-1, :-1]
        best0, best1 = scores.max(2), scores.max(1)
        idx0, idx1 = best0.indices, best1.indices  # best detection per track, best track per detection
        m = scores.shape[1]
        mutual0 = torch.arange(m, device=tokens.device)[None] == idx1.gather(1, idx0)
        mutual1 = torch.arange(n, device=tokens.device)[None] == idx0.gather(1, idx1)
        score0 = torch.where(mutual0, best0.values.exp(), scores.new_tensor(0))
        valid0 = mutual0 & (score0 > self.match_threshold)
        valid1 = mutual1 & valid0.gather(1, idx1)

        ids = torch.full((n,), -1, dtype=torch.long, device=tokens.device)
        ids[valid1[0]] = self.track_ids[0, idx1[0][valid1[0]]]
        new = ~valid1[0]
        num_new = int(new.sum())
        ids[new] = torch.arange(self.next_id, self.next_id + num_new, device=tokens.device)
        self.next_id += num_new

        lost = ~valid0[0]
        lost_seen = [s for s, keep in zip(self.last_seen, lost.tolist()) if keep]
        self._remember(
            torch.cat([tokens, self.tokens[:, lost]], dim=1),
            torch.cat([ids[None], self.track_ids[:, lost]], dim=1),
            [self.frame] * n + lost_seen,
        )
        return MatchResult(ids=ids, cost=cost, log_assign=log_assign, matched=valid1[0])

    def _remember(self, tokens: Tensor, ids: Tensor, last_seen: list[int]) -> None:
        self.tokens, self.track_ids, self.last_seen = tokens, ids, last_seen
        self._forget_stale()

    def _forget_stale(self) -> None:
        if self.tokens is None:
            return
        keep = len(self.last_seen)
        if self.max_lost_frames is not None:
            # the memory is ordered by recency (current matches first), so stale tracks form its tail
            keep = sum(self.frame - seen <= self.max_lost_frames for seen in self.last_seen)
        if self.max_tracks is not None:
            keep = min(keep, self.max_tracks)
        if keep < len(self.last_seen):
            self.tokens, self.track_ids = self.tokens[:, :keep], self.track_ids[:, :keep]
            self.last_seen = self.last_seen[:keep]
        if keep == 0:
            self.tokens = self.track_ids = None
            self.last_seen = []

