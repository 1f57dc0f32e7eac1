"""Facts about this host that decide how to give OpenGL to a child: cheap to gather, no probing."""

from __future__ import annotations

import os

from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .slurmgpu import Allocation, EglDevices

# Where a BrainVISA image or a conda environment keeps a software Mesa `libGL.so.1`; "*" is
# any one directory.
_MESA_SEARCH_PATTERNS = (
    "/usr/local/lib/mesa",
    "/usr/lib/mesa",
    "/usr/lib/*/mesa",
    "/opt/*/lib/mesa",
)
# Where GLVND finds the EGL vendor files that name the GL drivers.
EGL_VENDOR_DIRS = ("/etc/glvnd/egl_vendor.d", "/usr/share/glvnd/egl_vendor.d")
# Loader variables that already steer GL in the inherited environment: reported, since a
# user's LD_PRELOAD or vendor override can explain a surprising renderer.
LOADER_VARIABLES = (
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "__GLX_VENDOR_LIBRARY_NAME",
    "__EGL_VENDOR_LIBRARY_FILENAMES",
    "LIBGL_ALWAYS_SOFTWARE",
    "GALLIUM_DRIVER",
)


class HostFacts(Record):
    __slots__ = (
        "allocated_gpu",
        "distribution",
        "egl_devices",
        "given_mesa_dir",
        "gpu_egl_devices",
        "loader",
        "mesa_dirs",
        "nvidia_devices",
        "nvidia_egl",
        "original_display",
        "setpriv",
        "vgl_display",
        "vglrun",
        "weston",
        "xpra",
        "xvfb",
        "xvfb_takes_sockets",
        "xvfb_wrapper",
        "xwayland",
    )

    def __init__(
        self,
        *,
        xvfb: str | None,
        xpra: str | None,
        vglrun: str | None,
        mesa_dirs: tuple[str, ...],
        egl_devices: tuple[str, ...],
        nvidia_egl: bool,
        original_display: str | None,
        vgl_display: str | None,
        loader: Mapping[str, str] | None = None,
        xvfb_takes_sockets: bool = False,
        setpriv: str | None = None,
        given_mesa_dir: str | None = None,
        allocated_gpu: tuple[str, str] | None = None,
        gpu_egl_devices: EglDevices | None = None,
        weston: str | None = None,
        xwayland: str | None = None,
        distribution: tuple[str, ...] = (),
        nvidia_devices: tuple[str, ...] = (),
        xvfb_wrapper: ServerWrapper | None = None,
    ) -> None:
        self.xvfb = xvfb
        # Whether that Xvfb takes a claimed display's sockets by socket activation (the
        # server that a wrapper script execs, when it is one).
        self.xvfb_takes_sockets = xvfb_takes_sockets
        self.xvfb_wrapper = xvfb_wrapper
        self.xpra = xpra
        # util-linux's setpriv, which gives xpra's own Xvfb a parent-death signal.
        self.setpriv = setpriv
        self.vglrun = vglrun
        self.mesa_dirs = mesa_dirs
        # The directory that --mesa-dir names, resolved, when it holds a libGL.so.1.
        self.given_mesa_dir = given_mesa_dir
        # The DRI render nodes, and the NVIDIA driver's device nodes (/dev/nvidia0...): a GPU
        # is here, whether or not the renderer a probe reaches is one.
        self.egl_devices = egl_devices
        self.nvidia_devices = nvidia_devices
        self.nvidia_egl = nvidia_egl
        self.original_display = original_display
        self.vgl_display = vgl_display
        self.loader: Mapping[str, str] = loader or {}
        # Inside a SLURM job: VirtualGL's device for the GPU it was given, and why; and the EGL
        # devices listed to find it, where that GPU has no DRM card node.
        self.allocated_gpu = allocated_gpu
        self.gpu_egl_devices = gpu_egl_devices
        # Where there is no Xvfb (RHEL 10): a rootful Xwayland on weston's headless back end.
        self.weston = weston
        self.xwayland = xwayland
        # os-release's ID, then its ID_LIKE: what to tell a user to install.
        self.distribution = distribution


def supports_socket_activation(server_binary: str) -> bool:
    """Whether this X server takes listening sockets from LISTEN_FDS: its transport layer was
    built with systemd support, so it calls sd_listen_fds (Debian's Xvfb does; a server built
    without it would try to bind the display's sockets itself, and fail)."""
    import mmap  # mapped, the file's pages are searched in place: no 2 MB copy to allocate

    try:
        with (
            open(server_binary, "rb") as binary,
            mmap.mmap(binary.fileno(), 0, prot=mmap.PROT_READ) as mapped,
        ):
            return mapped.find(b"sd_listen_fds") >= 0
    except (OSError, ValueError):
        return False


# A wrapper script is read this far (BrainVISA's Xvfb wrapper is one line of shell).
_WRAPPER_BYTES = 4096


class ServerWrapper(Record):
    """A shell script that execs the real server (BrainVISA's `bin/Xvfb`:
    `exec Xvfb.bin -xkbdir ${CONDA_PREFIX}/share/X11/xkb "$@"`): the binary it execs, and the
    conda prefix it belongs to, whose CONDA_PREFIX it needs (unset when the environment is not
    activated, it would pass -xkbdir /share/X11/xkb and the server would find no keymap)."""

    __slots__ = ("binary", "prefix")

    def __init__(self, binary: str, prefix: str) -> None:
        self.binary = binary
        self.prefix = prefix


def server_wrapper(script: str, path: str) -> ServerWrapper | None:
    """The wrapper `script` is, if it is a shell script that execs a server it names."""
    try:
        with open(script, "rb") as wrapper:
            text = wrapper.read(_WRAPPER_BYTES)
    except OSError:
        return None
    if not text.startswith(b"#!"):
        return None
    directory = os.path.dirname(os.path.abspath(script))
    prefix = os.path.dirname(directory)
    for line in text.decode(errors="replace").splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "exec":
            continue
        named = words[1].strip("\"'")
        for variable in ("${CONDA_PREFIX}", "$CONDA_PREFIX"):
            named = named.replace(variable, prefix)
        for variable in ('$(dirname "$0")', "$(dirname $0)", "${0%/*}"):
            named = named.replace(variable, directory)
        binary = named if "/" in named else which(named, f"{directory}:{path}")
        if binary and os.path.isfile(binary):
            return ServerWrapper(binary, prefix)
    return None


def which(program: str, path: str | None = None) -> str | None:
    """Like shutil.which, without importing shutil."""
    for directory in (path if path is not None else os.environ.get("PATH", os.defpath)).split(
        os.pathsep
    ):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def distribution(os_release: str = "/etc/os-release") -> tuple[str, ...]:
    """os-release's ID and ID_LIKE words ("rocky", "rhel", "centos", "fedora"), or ()."""
    words: list[str] = []
    try:
        with open(os_release, encoding="utf-8", errors="replace") as release:
            for line in release:
                name, _, value = line.strip().partition("=")
                if name in ("ID", "ID_LIKE"):
                    words += value.strip("\"'").split()
    except OSError:
        return ()
    return tuple(words)


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
    for pattern in _MESA_SEARCH_PATTERNS:
        candidates.extend(_expand(pattern))
    for prefix in filter(None, (env.get("CONDA_PREFIX"), env.get("PIXI_PROJECT_ROOT"))):
        candidates.append(os.path.join(prefix, "mesalib", "lib"))
        candidates.append(os.path.join(prefix, "lib", "mesa"))
    # realpath only for the few that hold a libGL: it costs a stat per path component.
    return tuple(dict.fromkeys(os.path.realpath(c) for c in candidates if has_libgl(c)))


def _allocation(
    env: Mapping[str, str], dev: str, gpu_roots: tuple[str, str] | None
) -> Allocation | None:
    if not env.get("SLURM_JOB_ID"):
        return None
    # Imported only inside a SLURM job.
    from .slurmgpu import DRM_CLASS, NVIDIA_GPUS, egl_device

    nvidia_root, drm_root = gpu_roots or (NVIDIA_GPUS, DRM_CLASS)
    return egl_device(env, nvidia_root, drm_root, dev)


def gpu_devices(dev: str = "/dev") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The DRI render nodes and the NVIDIA GPU nodes (not nvidiactl, nvidia-uvm...) under
    `dev` (a parameter, so that tests can name a fake tree)."""
    render = tuple(
        path for path in _expand(f"{dev}/dri/*") if os.path.basename(path).startswith("renderD")
    )
    try:
        names = sorted(os.listdir(dev))
    except OSError:
        names = []
    nvidia = tuple(
        os.path.join(dev, name)
        for name in names
        if name.startswith("nvidia") and name[len("nvidia") :].isdigit()
    )
    return render, nvidia


def egl_vendor_files(
    env: Mapping[str, str], dirs: tuple[str, ...] = EGL_VENDOR_DIRS
) -> tuple[str, ...]:
    """The EGL vendor files GLVND reads, as it chooses them: __EGL_VENDOR_LIBRARY_FILENAMES,
    else every .json in __EGL_VENDOR_LIBRARY_DIRS, else in its default directories."""
    named = env.get("__EGL_VENDOR_LIBRARY_FILENAMES")
    if named:
        return tuple(path for path in named.split(":") if path)
    listed = env.get("__EGL_VENDOR_LIBRARY_DIRS")
    found: list[str] = []
    for directory in listed.split(":") if listed else dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        found += [os.path.join(directory, name) for name in names if name.endswith(".json")]
    return tuple(found)


def gather(
    env: Mapping[str, str],
    mesa_dir: str | None = None,
    *,
    dev: str = "/dev",
    egl_vendor_dirs: tuple[str, ...] = EGL_VENDOR_DIRS,
    gpu_roots: tuple[str, str] | None = None,
) -> HostFacts:
    """The facts; `mesa_dir` is the directory --mesa-dir names, if any, to look into. `dev`,
    `egl_vendor_dirs` and `gpu_roots` are where GPU devices, GLVND's vendor files, and the
    NVIDIA driver's GPUs and the kernel's DRM cards are (tests name fake trees; None:
    /proc/driver/nvidia/gpus and /sys/class/drm)."""
    path = env.get("PATH", os.defpath)
    allocation = _allocation(env, dev, gpu_roots)
    xvfb = which("Xvfb", path)
    wrapper = server_wrapper(xvfb, path) if xvfb else None
    render_nodes, nvidia_devices = gpu_devices(dev)
    return HostFacts(
        xvfb=xvfb,
        xvfb_takes_sockets=bool(xvfb)
        and supports_socket_activation(wrapper.binary if wrapper else str(xvfb)),
        xvfb_wrapper=wrapper,
        xpra=which("xpra", path),
        weston=which("weston", path),
        xwayland=which("Xwayland", path),
        distribution=distribution(),
        setpriv=which("setpriv", path),
        vglrun=which("vglrun", path),
        mesa_dirs=_mesa_dirs(env),
        given_mesa_dir=os.path.realpath(mesa_dir) if mesa_dir and has_libgl(mesa_dir) else None,
        egl_devices=render_nodes,
        nvidia_devices=nvidia_devices,
        nvidia_egl=any(
            "nvidia" in os.path.basename(vendor_file)
            for vendor_file in egl_vendor_files(env, egl_vendor_dirs)
        ),
        original_display=env.get("DISPLAY") or None,
        vgl_display=env.get("VGL_DISPLAY") or None,
        loader={name: env[name] for name in LOADER_VARIABLES if env.get(name)},
        allocated_gpu=(allocation.device, allocation.reason) if allocation else None,
        gpu_egl_devices=allocation.egl if allocation else None,
    )
