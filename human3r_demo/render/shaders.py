"""GLSL 3.30 programs of the renderer. Every vertex shader takes world positions and the uniforms
``view`` (world -> OpenCV camera) and ``projection`` (camera -> clip, :meth:`.Camera.projection`)."""

from __future__ import annotations

__all__ = ["LINE", "MESH", "POINT", "QUAD"]

# lit meshes: a key light above-left of the camera, a fill light from the camera, a little specular
MESH = (
    """
    #version 330
    uniform mat4 view;
    uniform mat4 projection;
    in vec3 in_position;
    in vec3 in_normal;
    out vec3 v_position;
    out vec3 v_normal;
    void main() {
        vec4 camera = view * vec4(in_position, 1.0);
        v_position = camera.xyz;
        v_normal = mat3(view) * in_normal;
        gl_Position = projection * camera;
    }
    """,
    """
    #version 330
    uniform vec3 colour;
    in vec3 v_position;
    in vec3 v_normal;
    out vec4 f_colour;
    void main() {
        vec3 n = normalize(v_normal);
        vec3 to_eye = normalize(-v_position);
        vec3 key = normalize(vec3(-0.4, -0.7, -1.0));  // camera axes: left, up and towards the viewer
        float diffuse = max(dot(n, key), 0.0);
        float fill = max(dot(n, to_eye), 0.0);
        float specular = pow(max(dot(n, normalize(key + to_eye)), 0.0), 32.0);
        vec3 lit = colour * (0.25 + 0.55 * diffuse + 0.3 * fill) + 0.18 * specular;
        f_colour = vec4(min(lit, vec3(1.0)), 1.0);
    }
    """,
)

# round splats whose size follows the distance (radius in metres), at least min_pixels wide
POINT = (
    """
    #version 330
    uniform mat4 view;
    uniform mat4 projection;
    uniform float focal;
    uniform float min_pixels;
    in vec3 in_position;
    in vec3 in_colour;
    in float in_radius;
    out vec3 v_colour;
    out float v_size;
    void main() {
        vec4 camera = view * vec4(in_position, 1.0);
        gl_Position = projection * camera;
        v_size = max(2.0 * in_radius * focal / max(camera.z, 1e-6), min_pixels);
        gl_PointSize = v_size;
        v_colour = in_colour;
    }
    """,
    """
    #version 330
    in vec3 v_colour;
    in float v_size;
    out vec4 f_colour;
    void main() {
        vec2 d = 2.0 * gl_PointCoord - 1.0;
        // rounded only when several pixels wide: cutting tiny splats leaves holes that shimmer
        if (v_size > 3.0 && dot(d, d) > 1.0) discard;
        f_colour = vec4(v_colour, 1.0);
    }
    """,
)

LINE = (
    """
    #version 330
    uniform mat4 view;
    uniform mat4 projection;
    in vec3 in_position;
    void main() {
        gl_Position = projection * (view * vec4(in_position, 1.0));
    }
    """,
    """
    #version 330
    uniform vec3 colour;
    out vec4 f_colour;
    void main() {
        f_colour = vec4(colour, 1.0);
    }
    """,
)

QUAD = (
    """
    #version 330
    uniform mat4 view;
    uniform mat4 projection;
    in vec3 in_position;
    in vec2 in_uv;
    out vec2 v_uv;
    void main() {
        gl_Position = projection * (view * vec4(in_position, 1.0));
        v_uv = in_uv;
    }
    """,
    """
    #version 330
    uniform sampler2D image;
    in vec2 v_uv;
    out vec4 f_colour;
    void main() {
        f_colour = vec4(texture(image, v_uv).rgb, 1.0);
    }
    """,
)
