"""The tracker alone: the reference's designed scenario, and bounded memory."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from human3r_demo.tracking import Tracker, log_optimal_transport


def test_tracking_fixture_ids_and_sinkhorn(fixture_dir: Path) -> None:
    data = load_file(str(fixture_dir / "tiny_tracking.safetensors"))
    scenario = json.loads((fixture_dir / "tiny_tracking.json").read_text())
    tracker = Tracker(max_tracks=None)
    for view, people in enumerate(scenario["scenario_people"]):
        p = f"view{view:02d}."
        tokens = data.get(p + "track.injected_tokens", torch.zeros(1, 0, 32))
        assert tokens.shape[1] == len(people)
        match = tracker.update(tokens)
        expected = data[p + "out.smpl_id"][0].tolist() if people else []
        assert match.ids.tolist() == expected, (view, people)
        if p + "track.cost" in data:
            torch.testing.assert_close(match.cost, data[p + "track.cost"], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(match.log_assign, data[p + "track.log_assign"], atol=1e-5, rtol=1e-5)


def test_sinkhorn_marginals_and_the_dustbin() -> None:
    torch.manual_seed(0)
    m, n = 4, 3
    log_assign = log_optimal_transport(-torch.rand(1, m, n) * 5, dustbin=-1.0, iters=200)
    plan = log_assign.exp()[0]  # (m+1, n+1), scaled by m + n
    torch.testing.assert_close(plan[:m].sum(1), torch.ones(m), atol=1e-4, rtol=0)
    torch.testing.assert_close(plan[:, :n].sum(0), torch.ones(n), atol=1e-4, rtol=0)
    torch.testing.assert_close(plan[m].sum(), torch.tensor(float(n)), atol=1e-4, rtol=0)
    # two remembered people, two current ones: one is the same person, one a stranger at distance 30
    people = torch.tensor([[[0.0, 0.0], [10.0, 0.0]]])
    now = torch.tensor([[[0.2, 0.0], [40.0, 0.0]]])
    tracker = Tracker(dustbin=-10.0, max_tracks=None)
    assert tracker.update(people).ids.tolist() == [0, 1]
    ids = tracker.update(now).ids.tolist()
    assert ids[0] == 0 and ids[1] == 2  # the stranger goes to the dustbin and gets a new id
    # with a dustbin cheaper than every match, nobody is matched
    tracker = Tracker(dustbin=5.0, max_tracks=None)
    tracker.update(people)
    assert tracker.update(now).ids.tolist() == [2, 3]


def test_memory_is_bounded_and_people_come_back() -> None:
    g = torch.Generator().manual_seed(0)
    people = 20 * torch.nn.functional.normalize(torch.randn(40, 32, generator=g), dim=-1)
    tracker = Tracker(max_tracks=8)
    first = tracker.update(people[None, :2]).ids.tolist()
    for t in range(200):  # a crowd passing through, two new people per frame
        tracker.update(people[None, 2 + (2 * t) % 38 : 4 + (2 * t) % 38])
        assert tracker.num_remembered <= 8
    assert tracker.next_id > 40

    tracker = Tracker(max_tracks=None, max_lost_frames=3)
    a = tracker.update(people[None, :1]).ids.tolist()
    for _ in range(2):
        tracker.update(people[None, 1:2])
    assert tracker.update(people[None, :1]).ids.tolist() == a  # back within 3 frames: same id
    for _ in range(5):
        tracker.update(people[None, 1:2])
    assert tracker.num_remembered == 1
    assert tracker.update(people[None, :1]).ids.tolist() != a  # forgotten after 3 frames
    assert first == [0, 1]
