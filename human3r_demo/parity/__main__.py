"""``python -m human3r_demo.parity FIXTURE_DIR [--smplx PATH] [--verbose]``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from . import __doc__ as DOC
from .compare import Comparison
from .fixture import Fixture, fixture_smplx
from .run import run_parity, run_tracking


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m human3r_demo.parity", description=DOC.split("\n\n")[0])
    parser.add_argument("fixture_dir", type=Path)
    parser.add_argument("--smplx", type=Path, help="SMPL-X model to use (default: the fixture's synthetic one)")
    parser.add_argument("--fake-smplx-tool", type=Path, help="path of fake_smplx.py (default: tools/ beside the fixture)")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every failing view/frame")
    args = parser.parse_args(argv)

    try:
        fixture = Fixture.open(args.fixture_dir)
        smplx_path = args.smplx or fixture_smplx(fixture, args.fake_smplx_tool)
    except (FileNotFoundError, subprocess.CalledProcessError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cmp = Comparison()
    print(f"fixture {fixture.root} ({fixture.prefix}): {fixture.config.describe()}; SMPL-X {smplx_path}")
    run_parity(fixture, smplx_path, cmp)
    if fixture.tracking is not None:
        run_tracking(fixture, cmp)
    return 0 if cmp.report(verbose=args.verbose) else 1


if __name__ == "__main__":
    sys.exit(main())
