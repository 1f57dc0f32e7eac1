#!/usr/bin/env python3
"""One QC snapshot per subject: the demo scene of render_scene.py, turned by an angle that
the subject's number decides, so that every subject gets a picture of its own.

    ana-headless run examples/subject_snapshot.py OUT.png --subject 7 [--size 256x256]

As a library (examples/ on the import path), ``snapshot(subject, path)`` renders in the
calling process and keeps the scene (Qt, the OpenGL context, the mesh) for the next call, so
that in a long-lived worker (Dask) only the first snapshot pays for them. Qt's widgets belong
to the thread that created the application: call it from one thread (a Dask worker with
``nthreads=1``).

Output: the PNG's absolute path on stdout. Exit status: 0 when the PNG shows the lit mesh,
1 when it cannot be rendered or written, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import render_scene

SIZE = (256, 256)
TRIANGLES = 5000
# The golden angle: consecutive subjects are turned as far apart as they can be.
GOLDEN_ANGLE = 137.50776405003785

# One scene per image size, made on first use.
_scenes: dict[tuple[int, int], render_scene.SceneWidget] = {}


def angle(subject: int) -> float:
    return subject * GOLDEN_ANGLE % 360.0


def snapshot(subject: int, path: str | Path, size: tuple[int, int] = SIZE) -> str:
    """Render the subject's snapshot into `path` and check its pixels; the PNG's absolute
    path. Raises render_scene.RenderError when it cannot be rendered, written or checked."""
    scene = _scenes.get(size)
    if scene is None:
        scene = _scenes[size] = render_scene.open_scene(size, TRIANGLES)
    output = Path(path).resolve()
    render_scene.grab(scene, angle(subject), output)
    render_scene.check_image(output)
    return str(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Render one subject's QC snapshot (the demo scene, turned by an angle of "
        "its own) and check its pixels."
    )
    parser.add_argument("output", type=Path, help="PNG to write")
    parser.add_argument(
        "--subject",
        type=int,
        required=True,
        metavar="N",
        help="the subject's number, which decides the angle",
    )
    parser.add_argument(
        "--size",
        type=render_scene.parse_size,
        default=SIZE,
        metavar="WxH",
        help=f"image size (default: {SIZE[0]}x{SIZE[1]})",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        print(snapshot(args.subject, args.output, args.size))
    except render_scene.RenderError as error:
        print(f"subject_snapshot: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
