#!/usr/bin/env python3
"""Snapshot a mesh with BrainVISA's Anatomist, without a screen.

Anatomist and its Python API (pyanatomist) come with BrainVISA. This script drives
Anatomist as a batch QC job would: it loads a mesh, shows it in a 3D view, saves a
snapshot as PNG and checks the snapshot's pixels. By default it drives the
`anatomist` program through pyanatomist's socket implementation; with
`--implementation direct` (BrainVISA's default) Anatomist runs in this very process,
through pyanatomist's C++ bindings. Run it under ana-headless, with the Python that
has BrainVISA's packages::

    ana-headless run --python /usr/bin/python3 examples/anatomist_snapshot.py out.png
    ana-headless run examples/anatomist_snapshot.py out.png --mesh lh.white.gii

Usage::

    anatomist_snapshot.py OUTPUT.png [--mesh FILE] [--size WxH] [--implementation IMPL]

Without --mesh it writes a bumpy sphere in AIMS's ASCII .mesh format (read by
Anatomist without any other library) into a temporary directory and loads that.
The mesh is made orange, so that the check is exact: the corners must be the
view's white background, the centre the lit, shaded orange mesh.

Output: the absolute path of the PNG on stdout (among the lines that pyanatomist
prints there itself); the time of each step on stderr.
Exit status: 0 when the snapshot shows the mesh, 1 when it does not or Anatomist
failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Anatomist's 3D views are white by default; the mesh is made orange (RGBA).
BACKGROUND_RGB = (255, 255, 255)
MESH_COLOUR = (1.0, 0.55, 0.15, 1.0)
# Seen from a little above and to the side, so that the light shades the bumps.
VIEW_QUATERNION = (0.3, 0.2, 0.1, 0.927)
# A little back from the whole scene, so that the mesh keeps a margin of background.
ZOOM = 0.75


class SnapshotError(Exception):
    """Anatomist did not produce the expected image."""


def log(message: str, started: float) -> None:
    print(
        f"anatomist_snapshot: {time.monotonic() - started:6.2f} s  {message}",
        file=sys.stderr,
        flush=True,
    )


def write_sphere_mesh(path: Path, rings: int = 24) -> None:
    """A closed bumpy sphere of radius about 50 mm in AIMS's ASCII .mesh format:
    `ascii VOID 3 1`, then for the one time step: its index, the vertices, the
    normals (none: Anatomist computes them), the textures (none) and the triangles."""
    segments = 2 * rings
    vertices = [(0.0, 0.0, 50.0)]
    for i in range(1, rings):
        theta = math.pi * i / rings
        for j in range(segments):
            phi = 2 * math.pi * j / segments
            x, y, z = (
                math.sin(theta) * math.cos(phi),
                math.sin(theta) * math.sin(phi),
                math.cos(theta),
            )
            radius = 50.0 * (1 + 0.1 * math.sin(5 * x) * math.cos(4 * y) + 0.06 * math.sin(6 * z))
            vertices.append((x * radius, y * radius, z * radius))
    vertices.append((0.0, 0.0, -50.0))
    south = len(vertices) - 1

    def ring(i: int, j: int) -> int:
        return 1 + (i - 1) * segments + j % segments

    triangles = []
    for j in range(segments):
        triangles.append((0, ring(1, j), ring(1, j + 1)))
        triangles.append((south, ring(rings - 1, j + 1), ring(rings - 1, j)))
    for i in range(1, rings - 1):
        for j in range(segments):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j), ring(i + 1, j + 1)
            triangles += [(a, c, b), (b, c, d)]
    with open(path, "w", encoding="ascii") as mesh:
        mesh.write("ascii\nVOID\n3\n1\n0\n")
        mesh.write(f"{len(vertices)}\n")
        mesh.write(" ".join(f"({x:.3f}, {y:.3f}, {z:.3f})" for x, y, z in vertices) + "\n")
        mesh.write("0\n\n0\n\n")
        mesh.write(f"{len(triangles)}\n")
        mesh.write(" ".join(f"({a}, {b}, {c})" for a, b, c in triangles) + "\n")


def start_anatomist(*args: str, implementation: str = "socket") -> Any:
    """Anatomist through pyanatomist. The direct implementation runs libanatomist in this
    process, with `args` given to it. The socket one runs the `anatomist` program (found on
    PATH) as a child of this process, with `args` on its command line, listening on a port of
    the loopback that the kernel has just found free. (Left to itself, pyanatomist takes the
    first port from 50007 on which nothing listens yet: jobs started at the same time would
    all take 50007, and drive one another's Anatomist.)"""
    if implementation == "direct":
        import anatomist.direct.api as direct

        return direct.Anatomist(*args)
    import anatomist

    anatomist.setDefaultImplementation(anatomist.SOCKET)
    import anatomist.api as ana

    if ana.Anatomist.anatomistExecutable is None:
        raise SnapshotError("the `anatomist` program is not on PATH")
    return ana.Anatomist(*args, port=free_port())


def free_port() -> int:
    """A TCP port of the loopback that the kernel has just found free."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def snapshot(a: Any, mesh: Path, output: Path, size: tuple[int, int]) -> None:
    """Show `mesh` in a new 3D window of Anatomist `a` and save the view to `output`."""
    snapshot_in(a, a.createWindow("3D"), mesh, output, size)


def snapshot_in(a: Any, window: Any, mesh: Path, output: Path, size: tuple[int, int]) -> None:
    """Show `mesh` in `window` of Anatomist `a`, save the view to `output`, and take the mesh
    out of the window again (a window kept for many meshes shows one at a time)."""
    output.unlink(missing_ok=True)
    shape = a.loadObject(str(mesh))
    a.setMaterial(shape, diffuse=list(MESH_COLOUR))
    a.addObjects([shape], [window])
    a.execute("WindowConfig", windows=[window], cursor_visibility=0)
    window.camera(zoom=ZOOM, view_quaternion=list(VIEW_QUATERNION))
    window.snapshot(str(output), *size)
    a.removeObjects([shape], [window])
    # These commands get no answer; sync() sends one that does, once the others are done.
    a.sync()
    if not output.exists():
        raise SnapshotError(f"Anatomist wrote no snapshot to {output}")


def check_snapshot(path: Path, size: tuple[int, int]) -> str:
    """Raise SnapshotError unless `path` shows the lit mesh on the background; else say
    what it shows."""
    from PyQt5.QtGui import QImage

    image = QImage(str(path))
    if image.isNull():
        raise SnapshotError(f"cannot read the snapshot {path}")
    width, height = image.width(), image.height()
    if (width, height) != size:
        raise SnapshotError(f"{path}: {width}x{height}, expected {size[0]}x{size[1]}")

    def rgb(x: int, y: int) -> tuple[int, int, int]:
        colour = image.pixelColor(x, y)
        return colour.red(), colour.green(), colour.blue()

    corners = {rgb(x, y) for x in (0, width - 1) for y in (0, height - 1)}
    if corners != {BACKGROUND_RGB}:
        raise SnapshotError(
            f"{path}: corners {sorted(corners)}, expected the background {BACKGROUND_RGB}"
        )
    centre = [rgb(width // 2 + dx, height // 2 + dy) for dx in (-8, 0, 8) for dy in (-8, 0, 8)]
    orange = [red > green > blue + 20 for red, green, blue in centre]
    if not all(orange):
        raise SnapshotError(f"{path}: the centre shows {centre[4]}, not the orange mesh")
    step = max(1, min(width, height) // 64)
    mesh_pixels = [
        rgb(x, y)
        for y in range(0, height, step)
        for x in range(0, width, step)
        if rgb(x, y) != BACKGROUND_RGB
    ]
    reds = [red for red, _green, _blue in mesh_pixels]
    if max(reds) - min(reds) < 40:
        raise SnapshotError(f"{path}: the mesh is not shaded (red {min(reds)}..{max(reds)})")
    share = len(mesh_pixels) / len(range(0, height, step)) / len(range(0, width, step))
    return f"{width}x{height}, the mesh covers {100 * share:.0f}%, centre {centre[4]}"


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(value) for value in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 32 or height < 32:
        raise argparse.ArgumentTypeError("the size must be at least 32x32")
    return width, height


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Snapshot a mesh with Anatomist and check the snapshot's pixels."
    )
    parser.add_argument("output", type=Path, help="PNG to write")
    parser.add_argument("--mesh", type=Path, help="mesh to show (default: a bumpy sphere)")
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(512, 512),
        metavar="WxH",
        help="snapshot size (default: 512x512)",
    )
    parser.add_argument(
        "--implementation",
        choices=["socket", "direct"],
        default="socket",
        help="pyanatomist's: the `anatomist` program over a socket (default), or direct: in "
        "this process",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    output = args.output.resolve()
    a = None
    with tempfile.TemporaryDirectory(prefix="anatomist-snapshot-") as scratch:
        mesh = args.mesh
        if mesh is None:
            mesh = Path(scratch) / "sphere.mesh"
            write_sphere_mesh(mesh)
        try:
            a = start_anatomist("-b", implementation=args.implementation)
            log(f"Anatomist started (DISPLAY={os.environ.get('DISPLAY')})", started)
            snapshot(a, mesh.resolve(), output, args.size)
            log(f"snapshot of {mesh.name} saved", started)
            log(check_snapshot(output, args.size), started)
        except SnapshotError as error:
            print(f"anatomist_snapshot: error: {error}", file=sys.stderr)
            return 1
        finally:
            if a is not None:
                a.close()
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
