"""Visualisation: Rerun logging of frame results, and the colours shared with the exports."""

from .colors import track_colour

__all__ = ["track_colour"]
