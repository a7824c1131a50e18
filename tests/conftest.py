"""Shared test fixtures: the reference fixtures in ../shared, a synthetic SMPL-X model, tiny models."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HUMAN3R_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "reference" / "fixtures").is_dir():
        pytest.skip(f"needs the reference fixtures in {SHARED} (set HUMAN3R_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def fixture_dir(shared_dir: Path) -> Path:
    return shared_dir / "reference" / "fixtures"


@pytest.fixture(scope="session")
def smplx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the body-shaped SMPL-X stand-in (tests/smplx_standin.py; the real one needs a licence)."""
    from tests.smplx_standin import write

    out = tmp_path_factory.mktemp("smplx")
    write(out)
    return out


@pytest.fixture(scope="session")
def reference_smplx(fixture_dir: Path) -> Path:
    """The SMPL-X stand-in the reference fixtures were made with (their distribution's fake_smplx.py)."""
    from human3r_demo.parity import Fixture, fixture_smplx

    return fixture_smplx(Fixture.open(fixture_dir))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep converted checkpoints and generated files out of the user's cache."""
    os.environ["HUMAN3R_CACHE"] = str(tmp_path_factory.mktemp("human3r_cache"))


@pytest.fixture(scope="module")
def renderer():
    """An OpenGL renderer (Mesa's EGL on a CPU); skips without one, unless HUMAN3R_REQUIRE_RENDERER=1 (CI)."""
    from human3r_demo.render import GLRenderer, RendererUnavailable

    try:
        gl = GLRenderer()
    except RendererUnavailable as e:
        if os.environ.get("HUMAN3R_REQUIRE_RENDERER") == "1":
            pytest.fail(f"HUMAN3R_REQUIRE_RENDERER=1 but no renderer: {e}")
        pytest.skip(f"no OpenGL renderer here: {e}")
    yield gl
    gl.close()


@pytest.fixture(scope="session")
def tiny_model():
    import human3r_demo as h3r

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return h3r.load_model("tiny-random", device="cpu", precision="fp32")


def synthetic_clip(num_frames: int = 6, height: int = 180, width: int = 320, seed: int = 0) -> np.ndarray:
    """A small moving-pattern clip (T, H, W, 3) uint8: gradient background, drifting discs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = []
    centres = rng.uniform([0.2 * width, 0.2 * height], [0.8 * width, 0.8 * height], size=(3, 2))
    colours = rng.integers(60, 255, size=(3, 3))
    for t in range(num_frames):
        img = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 96)], -1).astype(np.uint8)
        for (cx, cy), colour in zip(centres + t * np.array([3.0, 1.5]), colours):
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < (0.08 * width) ** 2] = colour
        frames.append(img)
    return np.stack(frames)
