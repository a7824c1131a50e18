"""Frame sources: containers, rotation, folders, arrays, conversions and every bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from human3r_demo.io import SourceError, frames, probe
from tests.conftest import synthetic_clip
from tests.media import write_empty_video, write_video


@pytest.mark.parametrize("ext,codec", [("mp4", "libx264"), ("mov", "libx264"), ("webm", "libvpx-vp9"), ("avi", "mpeg4"), ("mkv", "libx264")])
def test_video_containers_stream_with_timestamps(tmp_path: Path, ext: str, codec: str) -> None:
    clip = synthetic_clip(6, 96, 128)
    path = write_video(tmp_path / f"clip.{ext}", clip, fps=10, codec=codec)
    decoded = list(frames(path))
    assert [f.index for f in decoded] == list(range(6))
    assert [round(f.timestamp, 3) for f in decoded] == [round(i / 10, 3) for i in range(6)]
    assert all(f.rgb.shape == (96, 128, 3) and f.rgb.dtype == np.uint8 for f in decoded)
    assert np.abs(decoded[3].rgb.astype(int) - clip[3]).mean() < 6  # lossy, but the same picture
    info = probe(path)
    assert info.fps == 10 and info.num_frames == 6


def test_rotation_metadata_is_honoured(tmp_path: Path) -> None:
    clip = np.zeros((3, 96, 128, 3), np.uint8)
    clip[:, :, :16] = 255  # a white band on the left edge
    path = write_video(tmp_path / "phone.mp4", clip, rotation=90)  # display: rotate 90 deg counter-clockwise
    frame = next(frames(path)).rgb
    assert frame.shape == (128, 96, 3)  # portrait after rotation
    assert frame[-16:].mean() > 200 and frame[:-24].mean() < 40  # the left edge is now the bottom edge


def test_subsample_and_max_frames(tmp_path: Path) -> None:
    clip = synthetic_clip(10, 96, 128)
    picked = list(frames(clip, subsample=3, max_frames=3))
    assert [f.index for f in picked] == [0, 3, 6]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(SourceError, match="subsample must be a positive integer"):
            list(frames(clip, subsample=bad))
    for bad in (0, -5, 2.0):
        with pytest.raises(SourceError, match="max_frames must be a positive integer or None"):
            list(frames(clip, max_frames=bad))


def test_image_folder_natural_order_and_exif(tmp_path: Path) -> None:
    clip = synthetic_clip(11, 96, 128)
    for i, frame in enumerate(clip):
        Image.fromarray(frame).save(tmp_path / f"frame_{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    decoded = list(frames(tmp_path))
    assert len(decoded) == 11
    assert all(np.array_equal(f.rgb, clip[i]) for i, f in enumerate(decoded))  # 0,1,...,10, not 0,1,10,2
    rotated = tmp_path.parent / "exif"
    rotated.mkdir()
    img = Image.fromarray(clip[0])
    exif = img.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 clockwise for display
    img.save(rotated / "a.jpg", exif=exif)
    assert next(frames(rotated)).rgb.shape == (128, 96, 3)


def test_grey_rgba_and_float_frames_are_converted() -> None:
    grey = np.full((2, 80, 100), 7, np.uint8)
    assert next(frames(grey)).rgb.shape == (80, 100, 3)
    rgba = np.full((80, 100, 4), 9, np.uint8)
    rgba[..., 3] = 255  # opaque: the colour as is
    out = next(frames([rgba]))
    assert out.rgb.shape == (80, 100, 3) and out.rgb.max() == 9
    rgba[:40, :, 3] = 0  # transparent: composited over black
    out = next(frames([rgba])).rgb
    assert out[:40].max() == 0 and out[40:].min() == 9
    assert next(frames([np.full((80, 100, 3), 0.5)])).rgb.max() == 128
    assert next(frames([Image.new("L", (100, 80))])).rgb.shape == (80, 100, 3)


def test_huge_frames_work_and_tiny_frames_are_refused(tiny_model) -> None:
    import human3r_demo as h3r

    eight_k = np.zeros((4320, 7680, 3), np.uint8)
    eight_k[1000:3000, 2000:5000] = 200
    result = next(h3r.reconstruct([eight_k], tiny_model, body_model=None))
    assert result.image.shape == (288, 512, 3)
    with pytest.raises(SourceError, match="frame 0 is 40x30 pixels; frames need at least 64 pixels"):
        list(frames([np.zeros((30, 40, 3), np.uint8)]))


def test_extreme_aspect_ratio_and_portrait(tiny_model) -> None:
    import human3r_demo as h3r

    portrait = synthetic_clip(2, 320, 180)
    results = list(h3r.reconstruct(portrait, tiny_model, body_model=None))
    assert results[0].image.shape == (512, 288, 3)  # handled natively, no rotation
    with pytest.raises(ValueError, match="too elongated: at size 512 its short side becomes less than 16 pixels"):
        next(h3r.reconstruct([np.zeros((64, 4000, 3), np.uint8)], tiny_model, body_model=None))


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder: .*nothing.mp4"):
        list(frames(tmp_path / "nothing.mp4"))
    with pytest.raises(SourceError, match="has no images"):
        list(frames(tmp_path))
    with pytest.raises(SourceError, match="cannot read frames from a float"):
        list(frames(4.2))
    with pytest.raises(SourceError, match=r"frame 0 is a str, not an image"):
        list(frames(["not an image"]))
    with pytest.raises(SourceError, match=r"frame 0: expected an \(H, W\), \(H, W, 3\) or \(H, W, 4\) image"):
        list(frames([np.zeros((80, 100, 2), np.uint8)]))


def test_non_video_renamed_mp4(tmp_path: Path) -> None:
    fake = tmp_path / "holiday.mp4"
    fake.write_text("this is a text file, not a video")
    with pytest.raises(SourceError, match=r"holiday\.mp4 is not a readable video .*truncated, corrupt, or not a video"):
        list(frames(fake))


def test_truncated_and_corrupt_videos(tmp_path: Path) -> None:
    data = write_video(tmp_path / "full.mp4", synthetic_clip(8, 96, 128)).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"cut\.mp4 is not a readable video"):
        list(frames(cut))
    mkv = write_video(tmp_path / "full.mkv", synthetic_clip(8, 96, 128)).read_bytes()
    broken = bytearray(mkv)
    broken[len(broken) // 3 : len(broken) // 3 + 400] = bytes(range(200)) * 2
    (tmp_path / "broken.mkv").write_bytes(bytes(broken))
    with pytest.raises(SourceError, match=r"broken\.mkv is corrupt or truncated: decoding failed"):
        list(frames(tmp_path / "broken.mkv"))
    (tmp_path / "short.mkv").write_bytes(mkv[: len(mkv) * 2 // 3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decoded = list(frames(tmp_path / "short.mkv"))
    assert 0 < len(decoded) < 8
    assert any(f"ended after {len(decoded)} of about 8 frames" in str(w.message) for w in caught)


def test_zero_frame_video(tmp_path: Path) -> None:
    path = write_empty_video(tmp_path / "empty.mp4")
    with pytest.raises(SourceError, match=r"empty\.mp4 contains no video frames"):
        list(frames(path))
