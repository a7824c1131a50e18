"""Independent readers of our exports that live outside Python: the Khronos glTF validator (node)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

VALIDATOR = REPO / ".ci" / "node_modules" / "gltf-validator"  # .ci/run installs it (npm)


def validate_gltf(*paths: Path) -> list[dict]:
    """The Khronos validator's report of each file (errors, warnings, infos, messages).

    Skips where node or the validator is missing, unless ``HUMAN3R_REQUIRE_VALIDATORS=1`` (CI).
    """
    node = shutil.which("node")
    if node is None or not VALIDATOR.is_dir():
        if os.environ.get("HUMAN3R_REQUIRE_VALIDATORS") == "1":
            pytest.fail(f"HUMAN3R_REQUIRE_VALIDATORS=1 but node or {VALIDATOR} is missing")
        pytest.skip("the Khronos glTF validator is not installed (npm install --prefix .ci gltf-validator)")
    done = subprocess.run([node, str(REPO / "tests" / "gltf_validate.js"), str(VALIDATOR), *map(str, paths)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]
