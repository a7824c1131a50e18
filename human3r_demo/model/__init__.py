"""The Human3R network as plain ``nn.Module`` s: no I/O, no tracking, no numpy, no PIL."""

from .dense_heads import DENSE_HEADS
from .detection import DETECTION_THRESHOLD
from .human3r import Human3R, Human3ROutput, RecurrentState

__all__ = ["DENSE_HEADS", "DETECTION_THRESHOLD", "Human3R", "Human3ROutput", "RecurrentState"]
