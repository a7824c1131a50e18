"""human3r_demo: Human3R inference as a small, faithful PyTorch package with a streaming API.

    import human3r_demo as h3r

    model = h3r.load_model("human3r_672S")          # or a local .pth / .safetensors, or "tiny-random"
    for result in h3r.reconstruct("video.mp4", model, reset_interval=100):
        print(result.index, result.num_people, result.camera_to_world[:3, 3])
"""

from .body import BodyModel, BodyModelError, BodyModelNotFound
from .checkpoints import CheckpointError, load_model, to_official_state_dict
from .config import ConfigError, Human3RConfig
from .device import DeviceError
from .io import SourceError, frames
from .model import Human3R, Human3ROutput, RecurrentState
from .options import OptionsError, RunOptions
from .results import FrameResult, Person
from .session import Session
from .stream import Reconstructor, reconstruct

__version__ = "0.2.0"

__all__ = [
    "BodyModel",
    "BodyModelError",
    "BodyModelNotFound",
    "CheckpointError",
    "ConfigError",
    "DeviceError",
    "FrameResult",
    "Human3R",
    "Human3RConfig",
    "Human3ROutput",
    "OptionsError",
    "Person",
    "Reconstructor",
    "RecurrentState",
    "RunOptions",
    "Session",
    "SourceError",
    "frames",
    "load_model",
    "reconstruct",
    "to_official_state_dict",
]
