"""The OpenGL context: headless by default, through moderngl and glcontext.

On Linux the context is an EGL one, which needs no display: Mesa's llvmpipe renders on the CPU
(packages ``libegl1 libegl-mesa0 libgl1-mesa-dri``) and NVIDIA's driver on the GPU (its
``libEGL_nvidia`` is picked through libglvnd; ``GLCONTEXT_DEVICE_INDEX`` picks among several
GPUs). Other systems get their platform's own (WGL, CGL).

``HUMAN3R_GL_BACKEND`` overrides the choice: ``egl``, or ``native`` for the platform's default
(on Linux that is GLX and needs an X display). It is read when a context is made, never written,
so a value the user set is what counts.
"""

from __future__ import annotations

import os
import sys

__all__ = ["BACKEND_ENV", "RendererUnavailable", "create_context", "gl_backend"]

BACKEND_ENV = "HUMAN3R_GL_BACKEND"
GL_VERSION = 330  # the shaders' #version


class RendererUnavailable(RuntimeError):
    """No OpenGL context could be made (library or driver missing); the message says what to install."""


def gl_backend() -> str | None:
    """glcontext's backend name to ask for: ``"egl"``, or ``None`` for the platform's default."""
    chosen = os.environ.get(BACKEND_ENV, "").strip().lower()
    if chosen not in ("", "egl", "native"):
        raise RendererUnavailable(f"{BACKEND_ENV}={chosen!r}: expected 'egl' or 'native'")
    if chosen == "native" or (not chosen and not sys.platform.startswith("linux")):
        return None
    return "egl"


def create_context():
    """A standalone ``moderngl.Context`` (current in the calling thread), or :class:`RendererUnavailable`."""
    try:
        import moderngl
    except ImportError as e:
        raise RendererUnavailable(f"the renderer needs moderngl ({e}): pip install moderngl") from e
    backend = gl_backend()
    try:
        settings = {"backend": backend} if backend else {}
        return moderngl.create_standalone_context(require=GL_VERSION, **settings)
    except Exception as e:  # glcontext raises plain Exceptions with the driver's message
        hint = ("install Mesa's EGL for rendering on the CPU: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri"
                if backend == "egl" else f"set {BACKEND_ENV}=egl to render without a display")
        raise RendererUnavailable(f"no OpenGL {GL_VERSION // 100}.{GL_VERSION % 100 // 10} context "
                                  f"(backend {backend or 'native'}): {e}; {hint}") from e
