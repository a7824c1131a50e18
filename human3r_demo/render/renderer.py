"""One OpenGL context and its programs, made once per run and reused for every frame and every view."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from . import shaders
from .camera import Camera
from .context import RendererUnavailable, create_context
from .primitives import Lines, Mesh, Points, Quad

__all__ = ["GLRenderer", "renderer_unavailable"]

T = TypeVar("T")
_KEPT_SIZES = 4  # framebuffers kept for this many image sizes (a run uses one or two)


class GLRenderer:
    """Draws meshes, splats, lines and images from a :class:`~.camera.Camera` into an RGBA array.

    All GL work runs in one private thread: a context is current in one thread at a time, while
    callers may come from any (Gradio runs each step of a generator in a pool thread).

    Args:
        samples: multisampling (anti-aliasing) samples per pixel; 0 turns it off.

    Raises:
        RendererUnavailable: no OpenGL context (see :mod:`.context`).
    """

    def __init__(self, *, samples: int = 4) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="human3r-gl")
        self._ctx = None
        try:
            self._run(self._open, samples)
        except BaseException:
            self._thread.shutdown()
            raise

    # ------------------------------------------------------------------ public
    def render(
        self,
        camera: Camera,
        *,
        meshes: Sequence[Mesh] = (),
        points: Sequence[Points] = (),
        lines: Sequence[Lines] = (),
        quads: Sequence[Quad] = (),
        background: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
    ) -> np.ndarray:
        """(H, W, 4) uint8 RGBA image, depth-tested; alpha is 0 where nothing was drawn over a
        transparent ``background`` (RGBA in [0, 1]) and partial on anti-aliased edges."""
        return self._run(self._render, camera, meshes, points, lines, quads, background)

    @property
    def info(self) -> dict[str, Any]:
        """The driver's GL_RENDERER, GL_VERSION, ... (e.g. ``llvmpipe`` for Mesa's CPU renderer)."""
        return self._run(lambda: dict(self._ctx.info))

    def close(self) -> None:
        """Free the context and everything in it. Safe to call twice."""
        if self._ctx is not None:
            self._run(self._release)
        self._thread.shutdown()

    def __enter__(self) -> GLRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ in the GL thread
    def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return self._thread.submit(fn, *args).result()

    def _open(self, samples: int) -> None:
        ctx = self._ctx = create_context()  # first: it explains a missing moderngl
        import moderngl

        self._samples = min(samples, ctx.max_samples)
        self._mesh = _Batch(ctx, shaders.MESH, "3f 3f", ("in_position", "in_normal"), indexed=True)
        self._point = _Batch(ctx, shaders.POINT, "3f 3f 1f", ("in_position", "in_colour", "in_radius"))
        self._line = _Batch(ctx, shaders.LINE, "3f", ("in_position",))
        self._quad = _Batch(ctx, shaders.QUAD, "3f 2f", ("in_position", "in_uv"))
        self._framebuffers: OrderedDict[tuple[int, int], tuple[Any, Any]] = OrderedDict()
        self._textures: dict[tuple[int, int], Any] = {}
        self._modes = {"triangles": moderngl.TRIANGLES, "points": moderngl.POINTS, "lines": moderngl.LINES}
        self._cull = moderngl.CULL_FACE
        ctx.enable(moderngl.DEPTH_TEST | moderngl.PROGRAM_POINT_SIZE)
        # Camera.projection keeps image rows top-down in GL's bottom-up window: a mirror, so a face
        # that is counter-clockwise seen from outside is clockwise on GL's screen
        ctx.front_face = "cw"

    def _release(self) -> None:
        self._ctx.release()
        self._ctx = None

    def _targets(self, width: int, height: int) -> tuple[Any, Any]:
        """(framebuffer drawn into, framebuffer read from) of this size; the same one without multisampling."""
        key = (width, height)
        if key not in self._framebuffers:
            ctx = self._ctx
            resolved = ctx.framebuffer(ctx.renderbuffer(key, 4), ctx.depth_renderbuffer(key))
            drawn = resolved if not self._samples else ctx.framebuffer(
                ctx.renderbuffer(key, 4, samples=self._samples), ctx.depth_renderbuffer(key, samples=self._samples))
            self._framebuffers[key] = (drawn, resolved)
            if len(self._framebuffers) > _KEPT_SIZES:
                for fbo in set(self._framebuffers.popitem(last=False)[1]):
                    for attachment in (*fbo.color_attachments, fbo.depth_attachment):
                        attachment.release()
                    fbo.release()
        self._framebuffers.move_to_end(key)
        return self._framebuffers[key]

    def _render(self, camera: Camera, meshes, points, lines, quads, background) -> np.ndarray:
        if self._ctx is None:
            raise RuntimeError("the renderer is closed")
        drawn, resolved = self._targets(camera.width, camera.height)
        drawn.use()
        drawn.clear(*background, depth=1.0)
        uniforms = {"view": _mat4(camera.world_to_camera), "projection": _mat4(camera.projection())}
        self._ctx.enable(self._cull)  # bodies are closed: their insides are never meant to be seen
        for mesh in meshes:
            vertices = np.concatenate([mesh.vertices, mesh.normals], 1)
            self._mesh.draw(self._modes["triangles"], vertices, mesh.faces, uniforms, colour=_rgb(mesh.colour))
        self._ctx.disable(self._cull)  # the frustum's picture shows from both sides
        for cloud in points:
            radius = np.broadcast_to(np.asarray(cloud.radius, np.float32).reshape(-1, 1), (len(cloud.positions), 1))
            vertices = np.concatenate([cloud.positions, cloud.colours / 255.0, radius], 1)
            self._point.draw(self._modes["points"], vertices, None, uniforms, focal=camera.focal, min_pixels=cloud.min_pixels)
        for strip in lines:
            self._ctx.line_width = strip.width
            self._line.draw(self._modes["lines"], strip.segments.reshape(-1, 3), None, uniforms, colour=_rgb(strip.colour))
        for quad in quads:
            self._texture(quad.image).use(0)
            uv = np.array([[0, 0], [1, 0], [1, 1], [0, 0], [1, 1], [0, 1]], np.float32)  # image rows top-down
            corners = quad.corners[[0, 1, 2, 0, 2, 3]]
            self._quad.draw(self._modes["triangles"], np.concatenate([corners, uv], 1), None, uniforms, image=0)
        if drawn is not resolved:
            self._ctx.copy_framebuffer(resolved, drawn)  # averages the samples
        out = np.empty((camera.height, camera.width, 4), np.uint8)
        resolved.read_into(out, components=4, alignment=1)  # GL's bottom row is the image's top (Camera.projection)
        return out

    def _texture(self, image: np.ndarray):
        h, w = image.shape[:2]
        texture = self._textures.get((w, h))
        if texture is None:
            texture = self._textures[(w, h)] = self._ctx.texture((w, h), 3, alignment=1)
        texture.write(np.ascontiguousarray(image, np.uint8), alignment=1)
        return texture


class _Batch:
    """A program with vertex (and index) buffers that grow when a draw needs more room."""

    def __init__(self, ctx, sources: tuple[str, str], layout: str, attributes: tuple[str, ...], indexed: bool = False) -> None:
        self.ctx = ctx
        self.program = ctx.program(vertex_shader=sources[0], fragment_shader=sources[1])
        self.layout, self.attributes, self.indexed = layout, attributes, indexed
        self.vertex_buffer = self.index_buffer = self.vao = None

    def draw(self, mode: int, vertices: np.ndarray, indices: np.ndarray | None, uniforms: dict[str, bytes], **values) -> None:
        """Draw ``vertices`` (V, attributes) float, or the triangles ``indices`` (F, 3) of them."""
        vertex_bytes = np.ascontiguousarray(vertices, np.float32)
        index_bytes = np.ascontiguousarray(indices, np.uint32) if self.indexed else None
        if not len(vertex_bytes):
            return
        self._reserve(vertex_bytes.nbytes, index_bytes.nbytes if self.indexed else 0)
        # orphaning gives the buffer fresh storage: no wait for a GPU still drawing the previous contents
        self.vertex_buffer.orphan()
        self.vertex_buffer.write(vertex_bytes)
        if self.indexed:
            self.index_buffer.orphan()
            self.index_buffer.write(index_bytes)
        for name, value in uniforms.items():
            self.program[name].write(value)
        for name, value in values.items():
            self.program[name].value = value
        self.vao.render(mode, vertices=index_bytes.size if self.indexed else len(vertex_bytes))

    def _reserve(self, vertex_nbytes: int, index_nbytes: int) -> None:
        grow = self.vao is None or self.vertex_buffer.size < vertex_nbytes or (self.indexed and self.index_buffer.size < index_nbytes)
        if not grow:
            return
        if self.vao is not None:
            vertex_nbytes = max(vertex_nbytes, self.vertex_buffer.size)
            index_nbytes = max(index_nbytes, self.index_buffer.size) if self.indexed else 0
            for obj in (self.vao, self.vertex_buffer, self.index_buffer):
                if obj is not None:
                    obj.release()
        self.vertex_buffer = self.ctx.buffer(reserve=_capacity(vertex_nbytes), dynamic=True)
        self.index_buffer = self.ctx.buffer(reserve=_capacity(index_nbytes), dynamic=True) if self.indexed else None
        self.vao = self.ctx.vertex_array(self.program, [(self.vertex_buffer, self.layout, *self.attributes)],
                                         self.index_buffer, index_element_size=4)


def _capacity(nbytes: int) -> int:
    """Room for ``nbytes`` with headroom (the next power of two), so buffers are rarely remade."""
    return 1 << max(int(nbytes - 1).bit_length(), 12)


def _mat4(M: np.ndarray) -> bytes:
    return np.ascontiguousarray(M.T, np.float32).tobytes()  # GLSL matrices are column-major


def _rgb(colour: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(c) / 255.0 for c in colour[:3])


def renderer_unavailable() -> str | None:
    """Why no renderer can be made here (what to install), or ``None`` if one can."""
    try:
        GLRenderer(samples=0).close()
    except RendererUnavailable as e:
        return str(e)
    return None
