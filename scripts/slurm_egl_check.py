#!/usr/bin/env python3
"""On a GPU host: simulate a SLURM allocation, print the EGL device ana-headless chooses for
it, and render there with VirtualGL. Needs python3 and the checkout (no install, no pip);
VirtualGL's eglinfo and glxinfo for the checks, Xvfb for the render.

    python3 scripts/slurm_egl_check.py [--gpu MINOR] [--vgl-bin DIR]

--gpu: the global GPU id SLURM would put in SLURM_JOB_GPUS (default: the first NVIDIA GPU
the driver lists). VirtualGL is looked up in --vgl-bin, $VGL_BIN, ~/.cache/ana-headless-
vendor/virtualgl/bin (`make vendor`), /opt/VirtualGL/bin, then PATH.

Steps (each says what it saw, or why it was skipped):
1. the facts: the NVIDIA GPUs (/proc/driver/nvidia/gpus), the DRM cards (/sys/class/drm),
   nvidia-smi -L, and VirtualGL's own list of EGL devices (eglinfo -e);
2. the device chosen for SLURM_JOB_GPUS=MINOR, and for CUDA_VISIBLE_DEVICES=<its UUID>:
   both must name it (its DRI card, or where /dev/dri lacks it, as in a container given
   /dev/nvidia* alone, the eglN whose UUID is the GPU's);
3. `eglinfo -B DEVICE`: VirtualGL's device selection (the code vglrun -d uses) must open
   that GPU: a hardware renderer;
4. `ana-headless exec --gl virtualgl --explain -- glxinfo -B` in the simulated job: the
   launcher must choose `vglrun -d DEVICE` by itself and render on the GPU; then the demo
   scene, pixels checked, when PyQt5 is importable.
Exit status 0 when every step that ran passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ana_headless.slurmgpu import drm_cards, egl_device, nvidia_gpus  # noqa: E402

SOFTWARE = re.compile(r"llvmpipe|softpipe|swrast|software", re.IGNORECASE)
RENDERER = re.compile(r"OpenGL renderer string: (.*)")


def say(message: str) -> None:
    print(message, flush=True)


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    say(f"$ {' '.join(argv)}")
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        return 127, str(error)
    output = done.stdout + done.stderr
    say("  " + "\n  ".join(output.strip().splitlines()[-25:]))
    return done.returncode, output


def hardware_renderer(output: str) -> str | None:
    found = RENDERER.search(output)
    return found.group(1) if found and not SOFTWARE.search(found.group(1)) else None


def virtualgl_bin(given: str | None) -> Path | None:
    candidates = [
        given,
        os.environ.get("VGL_BIN"),
        str(Path.home() / ".cache" / "ana-headless-vendor" / "virtualgl" / "bin"),
        "/opt/VirtualGL/bin",
    ]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "vglrun").exists():
            return Path(candidate)
    found = shutil.which("vglrun")
    return Path(found).parent if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", type=int, help="the global GPU id (device minor) to allocate")
    parser.add_argument("--vgl-bin", help="the directory holding vglrun, eglinfo, glxinfo")
    args = parser.parse_args()
    failures = []

    say("== 1. facts")
    gpus = nvidia_gpus()
    for gpu in gpus:
        say(f"  NVIDIA GPU minor {gpu.minor}: {gpu.uuid} at {gpu.bus}")
    for card in drm_cards():
        say(f"  DRM {card.name} at {card.bus}, render node {card.render_node}")
    if shutil.which("nvidia-smi"):
        run(["nvidia-smi", "-L"])
    vgl = virtualgl_bin(args.vgl_bin)
    say(f"  VirtualGL: {vgl or 'not found'}")
    if vgl:
        run([str(vgl / "eglinfo"), "-e"])
    if not gpus:
        say("no NVIDIA GPU in /proc/driver/nvidia/gpus: nothing to map")
        return 1

    say("== 2. the device for a simulated allocation")
    gpu = next((g for g in gpus if g.minor == args.gpu), None) if args.gpu is not None else gpus[0]
    if gpu is None:
        say(f"no GPU with minor {args.gpu}")
        return 1
    job = {"SLURM_JOB_ID": "1", "SLURM_JOB_GPUS": str(gpu.minor), "CUDA_VISIBLE_DEVICES": "0"}
    # This shell's own variables, but none that names a GPU: each call names its own. The
    # loader's (LD_LIBRARY_PATH) decide which libEGL lists the EGL devices, where they are.
    base = {
        name: value
        for name, value in os.environ.items()
        if name not in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES")
    }
    chosen = egl_device({**base, **job})
    by_uuid = egl_device({**base, "SLURM_JOB_ID": "1", "CUDA_VISIBLE_DEVICES": gpu.uuid})
    say(f"  SLURM_JOB_GPUS={gpu.minor}: {chosen}")
    say(f"  CUDA_VISIBLE_DEVICES={gpu.uuid}: {by_uuid}")
    if chosen is None or by_uuid is None or chosen.device != by_uuid.device:
        failures.append("the two ways of naming the GPU do not give one device")
    device = chosen.device if chosen else "egl"
    say(f"CHOSEN EGL DEVICE: {device}")

    say("== 3. VirtualGL's device selection opens it")
    if vgl:
        status, output = run([str(vgl / "eglinfo"), "-B", device])
        renderer = hardware_renderer(output)
        say(f"  renderer: {renderer or 'none, or a software one'}")
        if status or not renderer:
            failures.append(f"eglinfo -B {device}")
    else:
        say("  skipped: VirtualGL not found (--vgl-bin)")

    say("== 4. the launcher in the simulated job renders with vglrun -d DEVICE")
    if vgl and shutil.which("Xvfb"):
        env = {
            **os.environ,
            **job,
            "PATH": f"{vgl}:{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT),
            "ANA_HEADLESS_PROBE_CACHE": "0",
        }
        env.pop("VGL_DISPLAY", None)
        launcher = [
            sys.executable,
            "-m",
            "ana_headless",
            "exec",
            "--gl",
            "virtualgl",
            "--explain",
            "--",
        ]
        status, output = run([*launcher, str(vgl / "glxinfo"), "-B"], env)
        if status or f"vglrun -d {device}" not in output or not hardware_renderer(output):
            failures.append("ana-headless exec --gl virtualgl -- glxinfo -B")
        if importlib.util.find_spec("PyQt5"):
            with tempfile.TemporaryDirectory() as out:
                status, output = run(
                    [
                        *launcher,
                        sys.executable,
                        str(ROOT / "examples" / "render_scene.py"),
                        os.path.join(out, "scene.png"),
                    ],
                    env,
                )
                if status:
                    failures.append("the demo scene under vglrun")
        else:
            say("  demo scene skipped: PyQt5 not importable")
    else:
        say("  skipped: needs VirtualGL and Xvfb")

    say("== " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
