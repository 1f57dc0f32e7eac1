"""W6 (c): every subject in one script, on one Anatomist, the way a user loops without
ana-headless: pyanatomist's socket client, one `anatomist` program, one 3D window that each
subject's mesh is shown in, snapshotted (256x256), checked and removed from
(examples/anatomist_snapshot.py's `snapshot_in`, which W6 (e) runs for each subject in a
window of its warm Anatomist).

    python anatomist_loop.py MESHDIR OUTDIR N

Subject n's mesh is MESHDIR/subject-n.mesh, its snapshot OUTDIR/subject-n.png. A subject that
fails is said on stderr and the loop goes on; the exit status is 0. (One window for all: in
batch mode Anatomist has no other window, and quits when its last one closes, so a loop that
made and dropped a window per subject would end the program after the first.)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import anatomist_snapshot as example

SIZE = (256, 256)


def main(meshdir: Path, outdir: Path, count: int) -> None:
    a = example.start_anatomist("-b")
    window = a.createWindow("3D")
    for subject in range(count):
        png = outdir / f"subject-{subject}.png"
        try:
            example.snapshot_in(a, window, meshdir / f"subject-{subject}.mesh", png, SIZE)
            example.check_snapshot(png, SIZE)
        except Exception as error:
            print(f"subject {subject}: {type(error).__name__}: {error}", file=sys.stderr)
    a.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
