"""A run's output folder: written in a staging folder beside it, moved into place as one complete set.

So a failure, a full disk or an interrupted run never damages what was there and never mixes two
runs: until :meth:`RunFolder.commit`, the output folder is exactly as it was; after it, it holds
exactly the new run's files. A folder holding anything but a previous run's exports is never
replaced (nothing a user put there is ever moved or deleted).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

__all__ = ["RUN_MARKER", "RunFolder", "RunFolderError"]

# written into summary.json; a folder whose summary carries it is a previous run that may be replaced
RUN_MARKER = "human3r_demo run"


class RunFolderError(OSError):
    """An output folder that cannot be used; the message says why."""


class RunFolder:
    """``final``: the folder the user asked for; the run writes into :attr:`staging` meanwhile."""

    def __init__(self, final: str | os.PathLike) -> None:
        self.final = Path(final)
        self.staging = self.final.parent / f".{self.final.name}.partial-{uuid.uuid4().hex[:8]}"

    def check(self) -> None:
        """Refuse, before anything runs, a folder that cannot take this run's results."""
        if self.final.exists() and not self.final.is_dir():
            raise RunFolderError(f"the output {self.final} exists and is not a folder; choose a folder name")
        if self.final.is_dir() and any(self.final.iterdir()) and not is_previous_run(self.final):
            raise RunFolderError(
                f"the output folder {self.final} holds files that are not a human3r_demo run; "
                f"choose an empty or new folder (nothing there was touched)"
            )
        parent = self.final.parent
        if not parent.is_dir():
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise RunFolderError(f"cannot create {parent}: {err.strerror or err}") from None
        if not os.access(parent, os.W_OK):
            raise RunFolderError(f"cannot write to {parent} (permission denied)")

    def open(self) -> Path:
        """Create the staging folder and return it."""
        self.check()
        self.staging.mkdir(parents=True)
        return self.staging

    def commit(self, files: dict[str, Path]) -> dict[str, Path]:
        """Move the staged run into place (replacing a previous run); returns ``files`` at their final paths."""
        previous = None
        if self.final.exists():
            previous = self.final.parent / f".{self.final.name}.previous-{uuid.uuid4().hex[:8]}"
            self.final.rename(previous)
        try:
            self.staging.rename(self.final)
        except OSError:
            if previous is not None:
                previous.rename(self.final)
            raise
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
        return {kind: self.final / path.relative_to(self.staging) for kind, path in files.items()}

    def abort(self) -> None:
        """Forget the staged files; the output folder stays as it was."""
        shutil.rmtree(self.staging, ignore_errors=True)


def is_previous_run(folder: Path) -> bool:
    """Whether ``folder`` holds a previous run's exports (its summary carries :data:`RUN_MARKER`)."""
    try:
        return json.loads((folder / "summary.json").read_text()).get("generator") == RUN_MARKER
    except (OSError, ValueError, AttributeError):
        return False
