"""RunOptions is the one source of every option: the command line and the app's widgets follow its fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import human3r_demo.options as options_module
from human3r_demo.cli import _parser
from human3r_demo.options import OptionsError, RunOptions, option_specs, options_from_arguments, options_from_inputs
from human3r_demo.tracking import Tracker
from tests.conftest import REPO

# an edit a developer might make to RunOptions: a new default and a narrower range for `size`, a new
# default and slider for `detection_threshold`. Nothing else is touched.
EDIT = """
from dataclasses import dataclass

import human3r_demo.options as options_module
from human3r_demo.options import _option


@dataclass(frozen=True)
class EditedOptions(options_module.RunOptions):
    size: int = _option(256, "long side (edited)", low=32, high=1024, label="Input size (edited)", presets=(256, 224))
    detection_threshold: float = _option(0.6, "minimum head score (edited)", low=0.0, high=1.0, label="Heads (edited)",
                                         slider=(0.2, 0.8, 0.1))


options_module.RunOptions = EditedOptions
"""


def test_types_come_from_the_dataclass_annotations() -> None:
    specs = {spec.name: spec for spec in option_specs()}
    assert (specs["size"].kind, specs["size"].optional) == (int, False)
    assert (specs["max_frames"].kind, specs["max_frames"].optional) == (int, True)
    assert (specs["fps"].kind, specs["fps"].optional) == (float, True)
    assert (specs["smplx"].kind, specs["smplx"].optional) == (str, True)
    assert specs["use_ttt3r"].kind is bool
    # an int option refuses a fraction, a float option takes one
    with pytest.raises(OptionsError, match="max_frames must be an integer"):
        RunOptions(max_frames=2.5)
    assert RunOptions(fps=12.5).fps == 12.5


def test_none_as_is_read_in_one_place_for_the_command_line_and_the_app() -> None:
    parser = _parser()
    args = parser.parse_args(["run", "clip.mp4", "--out", "o", "--reset-interval", "0", "--max-frames", "0",
                              "--max-lost-frames", "0"])
    options = options_from_arguments(args)
    assert options.reset_interval is None and options.max_frames is None and options.max_lost_frames is None
    # what the app's widgets send: floats from sliders and number boxes, 0 for "never"
    typed = options_from_inputs({"reset_interval": 0.0, "subsample": 2.0, "max_frames": 7.0})
    assert typed.reset_interval is None and typed.subsample == 2 and typed.max_frames == 7
    assert isinstance(typed.subsample, int)
    # the dataclass itself takes None, not the typed stand-in
    with pytest.raises(OptionsError, match="reset_interval must be between 1 and"):
        RunOptions(reset_interval=0)


def test_every_tracker_setting_is_an_option() -> None:
    import inspect

    settings = [p for p in inspect.signature(Tracker).parameters]
    names = {"match_threshold": "match_threshold", "dustbin": "dustbin_score", "iters": "sinkhorn_iterations",
             "max_tracks": "max_tracks", "max_lost_frames": "max_lost_frames"}
    assert sorted(settings) == sorted(names)
    fields = {spec.name for spec in option_specs()}
    assert set(names.values()) <= fields
    # and they reach the tracker
    from human3r_demo.stream import Reconstructor

    class _Model:  # the Reconstructor only asks the model its device before the first frame
        device = "cpu"

    recon = Reconstructor(_Model(), RunOptions(max_lost_frames=3, match_threshold=0.5, dustbin_score=-5.0,
                                               sinkhorn_iterations=7), body_model=None)
    tracker = recon.tracker
    assert (tracker.max_lost_frames, tracker.match_threshold, tracker.dustbin, tracker.iters) == (3, 0.5, -5.0, 7)


def test_an_edit_of_runoptions_changes_the_command_line(monkeypatch) -> None:
    namespace: dict = {}
    with monkeypatch.context() as patch:
        patch.setattr(options_module, "RunOptions", options_module.RunOptions)  # restored after the edit below
        exec(compile(EDIT, "<edit>", "exec"), namespace)
        args = _parser().parse_args(["run", "clip.mp4", "--out", "o"])
        assert args.size == 256 and args.detection_threshold == 0.6
        assert options_from_arguments(args).size == 256
        too_big = _parser().parse_args(["run", "clip.mp4", "--out", "o", "--size", "2048"])
        with pytest.raises(OptionsError, match="size must be between 32 and 1024"):
            options_from_arguments(too_big)
        assert "long side (edited)" in _parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert options_module.RunOptions().size == 512


@pytest.mark.slow
def test_an_edit_of_runoptions_changes_the_app_widgets(tmp_path: Path) -> None:
    code = EDIT + textwrap.dedent("""
        import json
        import app

        widgets = app.OPTION_WIDGETS
        size, heads = widgets["size"], widgets["detection_threshold"]
        print("WIDGETS", json.dumps({
            "size": [size.value, [c[1] for c in size.choices], size.label, size.info],
            "heads": [heads.value, heads.minimum, heads.maximum, heads.step, heads.label],
            "refused": str(app.read_options("tiny-random", *[w.value for w in widgets.values()]).size),
        }))
        try:
            app.read_options("tiny-random", *[2048 if n == "size" else w.value for n, w in widgets.items()])
        except Exception as err:
            print("ERROR", err)
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), TMPDIR=str(tmp_path),
               HUMAN3R_SMPLX_DIR=str(tmp_path / "none"), HUMAN3R_MODEL="tiny-random")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=240)
    assert out.returncode == 0, out.stderr
    widgets = json.loads(out.stdout.split("WIDGETS", 1)[1].splitlines()[0])
    assert widgets["size"] == [256, [256, 224], "Input size (edited)", "long side (edited)"]
    assert widgets["heads"] == [0.6, 0.2, 0.8, 0.1, "Heads (edited)"]
    assert widgets["refused"] == "256"
    assert "size must be between 32 and 1024, got 2048" in out.stdout.split("ERROR", 1)[1]
