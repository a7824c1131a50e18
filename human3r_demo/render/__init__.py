"""Rendered pictures and videos of a run: SMPL-X meshes over the input, and a world view.

    from human3r_demo.render import VideoRenderer

    with VideoRenderer("run.mp4", fps=10, faces=body.faces) as video:   # one GL context for the run
        for result in h3r.reconstruct("clip.mp4", model, body_model=body):
            video.add(result)                                          # rendered and encoded at once

=====================  ===========================================================================
:mod:`.renderer`       :class:`GLRenderer`: one OpenGL context (headless EGL, :mod:`.context`) and its
                       programs, reused for every frame and view
:mod:`.overlay`        :func:`render_overlay`: the meshes over the image, through the frame's camera
:mod:`.world`          :func:`render_world`: scene points, camera path and frustum, people, from a
                       virtual camera behind and above the first camera
:mod:`.video`          :class:`VideoRenderer`: either view, or both side by side, into an H.264 MP4
:mod:`.people`         a frame's people as meshes in their track colours (discs at the head without a mesh)
:mod:`.camera`         pinhole cameras (OpenCV conventions) -> OpenGL projections
:mod:`.primitives`     what is drawn: meshes, splats, lines, textured quads (:mod:`.shaders` draws them)
=====================  ===========================================================================

Rendering runs on the CPU (Mesa's llvmpipe) or a GPU, with no display. A frame's people are drawn
from their world-frame ``vertices``; a person without them (no SMPL-X model file) is a disc at the head.
"""

from .camera import Camera
from .context import RendererUnavailable
from .overlay import render_overlay
from .primitives import Lines, Mesh, Points, Quad
from .renderer import GLRenderer, renderer_unavailable
from .video import LAYOUTS, VideoRenderer
from .world import WorldHistory, render_world

__all__ = [
    "Camera",
    "GLRenderer",
    "LAYOUTS",
    "Lines",
    "Mesh",
    "Points",
    "Quad",
    "RendererUnavailable",
    "VideoRenderer",
    "WorldHistory",
    "render_overlay",
    "render_world",
    "renderer_unavailable",
]
