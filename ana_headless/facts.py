"""Facts about this host that decide how to give OpenGL to a child: cheap to gather, no probing."""

from __future__ import annotations

import os

from .lifetime import which
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# Where a BrainVISA image or a conda environment keeps a software Mesa `libGL.so.1`; "*" is
# any one directory.
_MESA_SEARCH_PATTERNS = (
    "/usr/local/lib/mesa",
    "/usr/lib/mesa",
    "/usr/lib/*/mesa",
    "/opt/*/lib/mesa",
)
_NVIDIA_EGL_VENDOR_FILES = (
    "/usr/share/glvnd/egl_vendor.d/10_nvidia.json",
    "/etc/glvnd/egl_vendor.d/10_nvidia.json",
)
# Loader variables that already steer GL in the inherited environment: reported, since a
# user's LD_PRELOAD or vendor override can explain a surprising renderer.
LOADER_VARIABLES = ("LD_PRELOAD", "LD_LIBRARY_PATH", "__GLX_VENDOR_LIBRARY_NAME",
                    "__EGL_VENDOR_LIBRARY_FILENAMES", "LIBGL_ALWAYS_SOFTWARE", "GALLIUM_DRIVER")
MESA_DIR_VAR = "ANA_HEADLESS_MESA_DIR"


class HostFacts(Record):
    __slots__ = ("allocated_gpu", "egl_devices", "loader", "mesa_dirs", "nvidia_egl",
                 "original_display", "vgl_display", "vglrun", "xpra", "xvfb")

    def __init__(self, *, xvfb: str | None, xpra: str | None, vglrun: str | None,
                 mesa_dirs: tuple[str, ...], egl_devices: tuple[str, ...], nvidia_egl: bool,
                 original_display: str | None, vgl_display: str | None,
                 loader: Mapping[str, str] | None = None,
                 allocated_gpu: tuple[str, str] | None = None) -> None:
        self.xvfb = xvfb
        self.xpra = xpra
        self.vglrun = vglrun
        self.mesa_dirs = mesa_dirs
        self.egl_devices = egl_devices
        self.nvidia_egl = nvidia_egl
        self.original_display = original_display
        self.vgl_display = vgl_display
        self.loader: Mapping[str, str] = loader or {}
        # Inside a SLURM job: VirtualGL's device for the GPU it was given, and why.
        self.allocated_gpu = allocated_gpu


def has_libgl(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "libGL.so.1"))


def _expand(pattern: str) -> list[str]:
    """The paths matching a pattern with at most one "*" standing for one directory name
    (glob would cost the launcher the import of re and fnmatch)."""
    head, star, tail = pattern.partition("*")
    if not star:
        return [pattern]
    try:
        names = sorted(os.listdir(head))
    except OSError:
        return []
    return [head + name + tail for name in names]


def _mesa_dirs(env: Mapping[str, str]) -> tuple[str, ...]:
    candidates: list[str] = []
    if env.get(MESA_DIR_VAR):
        candidates.append(env[MESA_DIR_VAR])
    for pattern in _MESA_SEARCH_PATTERNS:
        candidates.extend(_expand(pattern))
    for prefix in filter(None, (env.get("CONDA_PREFIX"), env.get("PIXI_PROJECT_ROOT"))):
        candidates.append(os.path.join(prefix, "mesalib", "lib"))
        candidates.append(os.path.join(prefix, "lib", "mesa"))
    # realpath only for the few that hold a libGL: it costs a stat per path component.
    return tuple(dict.fromkeys(os.path.realpath(c) for c in candidates if has_libgl(c)))


def _allocated_gpu(env: Mapping[str, str]) -> tuple[str, str] | None:
    if not env.get("SLURM_JOB_ID"):
        return None
    # Imported only inside a SLURM job.
    from .slurmgpu import egl_device

    return egl_device(env)


def gather(env: Mapping[str, str]) -> HostFacts:
    path = env.get("PATH", os.defpath)
    return HostFacts(
        xvfb=which("Xvfb", path),
        xpra=which("xpra", path),
        vglrun=which("vglrun", path),
        mesa_dirs=_mesa_dirs(env),
        egl_devices=tuple(path for path in _expand("/dev/dri/*")
                          if os.path.basename(path).startswith("renderD")),
        nvidia_egl=any(os.path.exists(f) for f in _NVIDIA_EGL_VENDOR_FILES),
        original_display=env.get("DISPLAY") or None,
        vgl_display=env.get("VGL_DISPLAY") or None,
        loader={name: env[name] for name in LOADER_VARIABLES if env.get(name)},
        allocated_gpu=_allocated_gpu(env),
    )
