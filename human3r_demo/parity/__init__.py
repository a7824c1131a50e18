"""Compare this implementation with reference fixtures: ``python -m human3r_demo.parity FIXTURE_DIR``.

Prints one row per recorded tensor (free-running, teacher-forced ``tf.``, post-processing
``frame.``/``clip.`` and ``tracking.`` rows) with the largest difference and the tolerance, and
exits non-zero if any fails. From Python, :func:`run` returns the :class:`Comparison` itself.

"The reference" is fanegg/Human3R@e313921 (``src/dust3r/model.py`` run through ``demo.py``'s
``prepare_input`` / ``prepare_output``), recorded as ``shared/reference/fixtures/README.md`` describes.
"""

from .compare import ATOL, RTOL, Comparison, Row
from .fixture import Fixture, fixture_smplx
from .run import fixture_model, frame_tensors, run, view_tensors

__all__ = ["ATOL", "RTOL", "Comparison", "Fixture", "Row", "fixture_model", "fixture_smplx", "frame_tensors", "run", "view_tensors"]
