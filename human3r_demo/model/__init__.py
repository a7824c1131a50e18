"""The Human3R network as plain ``nn.Module`` s: no I/O, no tracking, no numpy."""

from .human3r import Human3R, Human3ROutput, RecurrentState

__all__ = ["Human3R", "Human3ROutput", "RecurrentState"]
