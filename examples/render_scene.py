#!/usr/bin/env python3
"""Render a lit, shaded 3D mesh with PyQt5 + OpenGL and save it as PNG.

This is the demo bundled with ana-headless. It is an ordinary Qt program: it
needs an X display with GLX, which ana-headless provides::

    ana-headless run examples/render_scene.py out.png
    ana-headless run examples/render_scene.py bench.png --size 1024x768 \\
        --triangles 100000 --frames 50

Usage::

    render_scene.py [OUTPUT.png] [--size WxH] [--triangles N] [--frames N]

The scene is a bumpy sphere (a few thousand triangles by default, built with
plain Python math), lit by one directional light (Lambert + ambient) in a
GLSL 1.20 shader, drawn in a QOpenGLWidget that is never mapped on screen.
Each frame is grabbed from the widget's framebuffer with grabFramebuffer()
and saved as PNG; with ``--frames N`` (N > 1) the mesh turns a little between
frames and OUTPUT gets an index suffix (``scene-000.png``, ...).

The saved images are then read back and checked: the centre must show the
mesh, shaded (several brightness levels), and the top-left corner must be
exactly the clear colour.

Output: the absolute path of each PNG on stdout, one per line; the GL
renderer, size and triangle count, and the snapshot rate, on stderr.
Exit status: 0 on success, 1 when there is no usable OpenGL context or the
pixels are wrong, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from array import array
from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtGui import (
    QImage,
    QMatrix4x4,
    QOpenGLBuffer,
    QOpenGLShader,
    QOpenGLShaderProgram,
    QOpenGLVersionProfile,
    QSurfaceFormat,
    qBlue,
    qGreen,
    qRed,
)
from PyQt5.QtWidgets import QApplication, QOpenGLWidget

# Clear colour as 8-bit values, so the corner check can be exact.
CLEAR_RGB = (40, 48, 60)
MESH_RGB = (1.0, 0.55, 0.15)

GL_COLOR_BUFFER_BIT = 0x4000
GL_DEPTH_BUFFER_BIT = 0x0100
GL_DEPTH_TEST = 0x0B71
GL_CULL_FACE = 0x0B44
GL_TRIANGLES = 0x0004
GL_UNSIGNED_INT = 0x1405
GL_FLOAT = 0x1406
GL_RENDERER = 0x1F01
FLOAT_BYTES = 4

# GLSL 1.20 runs on Mesa llvmpipe and on the compatibility profile of the
# usual desktop drivers.
VERTEX_SHADER = """
#version 120
attribute vec3 a_position;
attribute vec3 a_normal;
uniform mat4 u_mvp;
uniform mat3 u_normal_matrix;
varying vec3 v_normal;
void main() {
    v_normal = u_normal_matrix * a_normal;
    gl_Position = u_mvp * vec4(a_position, 1.0);
}
"""

FRAGMENT_SHADER = """
#version 120
uniform vec3 u_colour;
uniform vec3 u_light_dir;
varying vec3 v_normal;
void main() {
    float lambert = max(dot(normalize(v_normal), u_light_dir), 0.0);
    gl_FragColor = vec4(u_colour * (0.2 + 0.8 * lambert), 1.0);
}
"""


class RenderError(Exception):
    """The scene could not be rendered or does not look right."""


def sphere_grid(triangles: int) -> tuple[int, int]:
    """Latitude rings and longitude segments giving about `triangles`."""
    # A closed UV sphere has 2 * lon * (lat - 1) triangles; lon = 2 * lat.
    lat = max(3, round(math.sqrt(triangles / 4)))
    return lat, 2 * lat


def radius(x: float, y: float, z: float) -> float:
    """Bumpy sphere radius along the unit direction (x, y, z)."""
    # A smooth function of the direction, so the poles get no cusp.
    return 1.0 + 0.12 * math.sin(5 * x) * math.cos(4 * y) + 0.08 * math.sin(6 * z + 1)


def build_mesh(lat: int, lon: int) -> tuple[array[float], array[int]]:
    """Interleaved position+normal floats and triangle indices."""
    directions = [(0.0, 1.0, 0.0)]
    for i in range(1, lat):
        theta = math.pi * i / lat
        for j in range(lon):
            phi = 2 * math.pi * j / lon
            directions.append(
                (
                    math.sin(theta) * math.cos(phi),
                    math.cos(theta),
                    math.sin(theta) * math.sin(phi),
                )
            )
    directions.append((0.0, -1.0, 0.0))
    points = []
    for x, y, z in directions:
        r = radius(x, y, z)
        points.append((x * r, y * r, z * r))
    south = len(points) - 1

    def ring(i: int, j: int) -> int:
        return 1 + (i - 1) * lon + j % lon

    # Counter-clockwise seen from outside, so back faces can be culled.
    faces: list[tuple[int, int, int]] = []
    for j in range(lon):
        faces.append((0, ring(1, j + 1), ring(1, j)))
        faces.append((south, ring(lat - 1, j), ring(lat - 1, j + 1)))
    for i in range(1, lat - 1):
        for j in range(lon):
            a, b = ring(i, j), ring(i, j + 1)
            c, d = ring(i + 1, j), ring(i + 1, j + 1)
            faces.append((a, b, c))
            faces.append((b, d, c))

    # Per-vertex normals: area-weighted sum of the adjacent face normals.
    normals = [[0.0, 0.0, 0.0] for _ in points]
    for a, b, c in faces:
        ax, ay, az = points[a]
        ux, uy, uz = points[b][0] - ax, points[b][1] - ay, points[b][2] - az
        vx, vy, vz = points[c][0] - ax, points[c][1] - ay, points[c][2] - az
        nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
        for k in (a, b, c):
            n = normals[k]
            n[0] += nx
            n[1] += ny
            n[2] += nz

    vertices = array("f")
    for (x, y, z), (nx, ny, nz) in zip(points, normals, strict=True):
        length = math.sqrt(nx * nx + ny * ny + nz * nz) or 1.0
        vertices.extend((x, y, z, nx / length, ny / length, nz / length))
    indices = array("I", (k for face in faces for k in face))
    return vertices, indices


class SceneWidget(QOpenGLWidget):
    """Draws the mesh; errors are stored, since Qt calls these methods."""

    def __init__(self, vertices: array[float], indices: array[int]) -> None:
        super().__init__()
        self.vertices = vertices
        self.indices = indices
        self.angle = 0.0
        self.error: str | None = None
        self.renderer = ""
        self.gl = None
        self.program = QOpenGLShaderProgram(self)
        self.vertex_buffer = QOpenGLBuffer(QOpenGLBuffer.Type.VertexBuffer)
        self.index_buffer = QOpenGLBuffer(QOpenGLBuffer.Type.IndexBuffer)

    def initializeGL(self) -> None:
        # Exceptions cannot propagate back into Qt from here: keep the message.
        self.error = self.setup()

    def setup(self) -> str | None:
        context = self.context()
        profile = QOpenGLVersionProfile()
        profile.setVersion(2, 0)
        gl = context.versionFunctions(profile) if context else None
        if gl is None or not gl.initializeOpenGLFunctions():
            return "the OpenGL context does not provide OpenGL 2.0"
        self.renderer = gl.glGetString(GL_RENDERER) or "unknown"
        for kind, source in (
            (QOpenGLShader.ShaderTypeBit.Vertex, VERTEX_SHADER),
            (QOpenGLShader.ShaderTypeBit.Fragment, FRAGMENT_SHADER),
        ):
            if not self.program.addShaderFromSourceCode(kind, source):
                return f"shader compilation failed: {self.program.log().strip()}"
        if not self.program.link():
            return f"shader link failed: {self.program.log().strip()}"
        for buffer, data in (
            (self.vertex_buffer, self.vertices),
            (self.index_buffer, self.indices),
        ):
            buffer.create()
            buffer.bind()
            raw = data.tobytes()
            buffer.allocate(raw, len(raw))
        gl.glEnable(GL_DEPTH_TEST)
        gl.glEnable(GL_CULL_FACE)
        self.gl = gl
        return None

    def paintGL(self) -> None:
        gl = self.gl
        if gl is None:
            return
        gl.glClearColor(*(c / 255 for c in CLEAR_RGB), 1.0)
        gl.glClear(GL_COLOR_BUFFER_BIT | GL_DEPTH_BUFFER_BIT)

        model = QMatrix4x4()
        model.rotate(25.0, 1.0, 0.0, 0.0)
        model.rotate(self.angle, 0.0, 1.0, 0.0)
        mvp = QMatrix4x4()
        mvp.perspective(35.0, self.width() / max(1, self.height()), 0.5, 20.0)
        mvp.translate(0.0, 0.0, -4.6)
        mvp *= model

        program = self.program
        program.bind()
        program.setUniformValue("u_mvp", mvp)
        program.setUniformValue("u_normal_matrix", model.normalMatrix())
        program.setUniformValue("u_colour", *MESH_RGB)
        # Light from the upper left, so the shading shows the shape.
        norm = math.sqrt(0.6**2 + 0.7**2 + 0.4**2)
        program.setUniformValue("u_light_dir", -0.6 / norm, 0.7 / norm, 0.4 / norm)
        self.vertex_buffer.bind()
        self.index_buffer.bind()
        stride = 6 * FLOAT_BYTES
        for name, offset in (("a_position", 0), ("a_normal", 3 * FLOAT_BYTES)):
            location = program.attributeLocation(name)
            program.enableAttributeArray(location)
            program.setAttributeBuffer(location, GL_FLOAT, offset, 3, stride)
        gl.glDrawElements(GL_TRIANGLES, len(self.indices), GL_UNSIGNED_INT, None)
        program.release()


def rgb(image: QImage, x: int, y: int) -> tuple[int, int, int]:
    pixel = image.pixel(x, y)
    return qRed(pixel), qGreen(pixel), qBlue(pixel)


def check_image(path: Path) -> None:
    """Raise RenderError unless the saved image shows the lit mesh."""
    image = QImage(str(path))
    if image.isNull():
        raise RenderError(f"cannot read back {path}")
    width, height = image.width(), image.height()
    corner = rgb(image, 0, 0)
    if corner != CLEAR_RGB:
        raise RenderError(
            f"{path}: corner pixel is {corner}, expected the clear colour {CLEAR_RGB}"
        )

    def is_mesh(colour: tuple[int, int, int]) -> bool:
        return sum(abs(a - b) for a, b in zip(colour, CLEAR_RGB, strict=True)) > 30

    cx, cy = width // 2, height // 2
    centre = [rgb(image, cx + dx, cy + dy) for dx in (-2, 0, 2) for dy in (-2, 0, 2)]
    if not all(is_mesh(c) for c in centre):
        raise RenderError(
            f"{path}: centre shows {centre[4]}, not the mesh (clear colour is {CLEAR_RGB})"
        )

    step = max(1, min(width, height) // 64)
    levels = {
        max(colour)
        for colour in (
            rgb(image, x, y) for y in range(0, height, step) for x in range(0, width, step)
        )
        if is_mesh(colour)
    }
    if max(levels) - min(levels) < 40:
        raise RenderError(
            f"{path}: the mesh is not shaded (brightness {min(levels)}..{max(levels)})"
        )


def frame_paths(output: Path, frames: int) -> list[Path]:
    if frames == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i:03d}{output.suffix}") for i in range(frames)]


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError("the size must be at least 16x16")
    return width, height


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Render a lit 3D mesh with PyQt5 OpenGL, save it as PNG and check its pixels."
    )
    parser.add_argument(
        "output",
        nargs="?",
        default="scene.png",
        type=Path,
        help="PNG to write (default: scene.png)",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(512, 512),
        metavar="WxH",
        help="image size (default: 512x512)",
    )
    parser.add_argument(
        "--triangles",
        type=positive,
        default=5000,
        metavar="N",
        help="approximate mesh size (default: 5000)",
    )
    parser.add_argument(
        "--frames",
        type=positive,
        default=1,
        metavar="N",
        help="frames to grab and save (default: 1)",
    )
    return parser.parse_args(argv)


def open_scene(size: tuple[int, int], triangles: int) -> SceneWidget:
    """The lit mesh in a hidden widget whose OpenGL context is ready to draw: the costly part
    (Qt, the context, the mesh), done once per process; `grab` then makes each snapshot."""
    platform = os.environ.get("QT_QPA_PLATFORM", "xcb")
    if platform.startswith("xcb") and not os.environ.get("DISPLAY"):
        # Qt would abort without a useful message.
        raise RenderError("no X display (DISPLAY is not set); run it under ana-headless")

    fmt = QSurfaceFormat()
    fmt.setDepthBufferSize(24)
    QSurfaceFormat.setDefaultFormat(fmt)
    app = QApplication.instance() or QApplication([sys.argv[0]])

    lat, lon = sphere_grid(triangles)
    vertices, indices = build_mesh(lat, lon)
    widget = SceneWidget(vertices, indices)
    # Qt deletes every widget along with the application: it lives as long as the widget.
    widget.application = app
    width, height = size
    widget.resize(width, height)
    # Rendered into the widget's framebuffer object; no need to map it.
    widget.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    widget.show()
    app.processEvents()
    if widget.error:
        raise RenderError(widget.error)
    if not widget.isValid():
        raise RenderError("no OpenGL context (is GLX available on this display?)")
    print(
        f"render_scene: GL_RENDERER={widget.renderer}; size {width}x{height}; "
        f"{len(indices) // 3} triangles",
        file=sys.stderr,
    )
    return widget


def grab(widget: SceneWidget, angle: float, path: Path) -> None:
    """Draw the mesh turned by `angle` degrees and save the frame as PNG."""
    widget.angle = angle
    image = widget.grabFramebuffer()
    if image.isNull():
        raise RenderError("grabFramebuffer() returned no image")
    if not image.save(str(path), "PNG"):
        raise RenderError(f"cannot write {path}")


def render(args: argparse.Namespace) -> list[Path]:
    widget = open_scene(args.size, args.triangles)
    paths = [p.resolve() for p in frame_paths(args.output, args.frames)]
    start = time.perf_counter()
    for index, path in enumerate(paths):
        grab(widget, 360.0 * index / len(paths), path)
    elapsed = time.perf_counter() - start
    print(
        f"render_scene: {len(paths)} snapshot(s) in {elapsed:.3f} s: "
        f"{len(paths) / elapsed:.1f} snapshots/s",
        file=sys.stderr,
    )
    widget.close()

    for path in paths:
        check_image(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        paths = render(args)
    except RenderError as error:
        print(f"render_scene: error: {error}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
