"""W6 (c): every subject in one script, on one Anatomist, the way a user loops without
ana-headless: pyanatomist's socket client, one `anatomist` program, a snapshot per subject,
checked, and the subject's objects released when its references go.

    python anatomist_loop.py MESHDIR OUTDIR N

Subject n's mesh is MESHDIR/subject-n.mesh, its snapshot OUTDIR/subject-n.png (256x256). A
subject that fails is said on stderr and the loop goes on; the exit status is 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import anatomist_snapshot as example

SIZE = (256, 256)


def main(meshdir: Path, outdir: Path, count: int) -> None:
    a = example.start_anatomist("-b")
    for subject in range(count):
        png = outdir / f"subject-{subject}.png"
        try:
            example.snapshot(a, meshdir / f"subject-{subject}.mesh", png, SIZE)
            example.check_snapshot(png, SIZE)
        except Exception as error:
            print(f"subject {subject}: {type(error).__name__}: {error}", file=sys.stderr)
    a.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
