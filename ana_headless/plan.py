"""From host facts and the user's options to a Plan: which server and its command line, which
GL candidates, and why.

Pure: no I/O. The launcher starts the server the Plan describes, then probes its GL candidates
in order and gives the child the first one whose probe is accepted. A new server or GL mode is
a new fact (facts.py), a branch here, and a test.
"""

from __future__ import annotations

from .errors import SetupError
from .glvnd import GLVND_LINKS, glvnd_links
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .claim import DisplayClaim
    from .facts import HostFacts
    from .options import Options
    from .screen import Screen


class Candidate(Record):
    """One way to give the child OpenGL, to be checked by a probe run exactly like the child.

    `env_patch` values may name PRIVATE_DIR, and `links` are made there (name -> target)
    before the probe runs: the session fills both in for the probe and the child alike.
    """

    __slots__ = (
        "env_patch",
        "gpu_required",
        "links",
        "min_gl_version",
        "mode",
        "prefix",
        "reason",
        "require_hardware",
    )

    def __init__(
        self,
        mode: str,
        reason: str,
        prefix: tuple[str, ...] = (),
        env_patch: Mapping[str, str | None] | None = None,
        *,
        require_hardware: bool = False,
        links: tuple[tuple[str, str], ...] = (),
        min_gl_version: tuple[int, int] | tuple[()] = (),
        gpu_required: bool = False,
    ) -> None:
        self.mode = mode
        self.reason = reason
        self.prefix = prefix
        self.env_patch: Mapping[str, str | None] = env_patch or {}
        # auto uses VirtualGL only for a hardware renderer: on a software one it adds
        # read-back cost.
        self.require_hardware = require_hardware or gpu_required
        self.links = links
        # --require-gl: an older OpenGL is not accepted.
        self.min_gl_version = min_gl_version
        # --require-gpu: only a hardware renderer is accepted, whatever the mode.
        self.gpu_required = gpu_required

    @property
    def needs_fresh_process(self) -> bool:
        """Whether it needs what the loader reads only when a process starts (VirtualGL's
        LD_PRELOAD through its prefix, Mesa's LD_LIBRARY_PATH)."""
        return bool(self.prefix or self.env_patch)


# In a server's command line, the values known only at its start (xserver.py fills them in):
# the display claimed for it (an argument that is replaced by as many as it takes, or none
# when the server picks its own number), the descriptor it writes its number to once ready,
# its cookie file, and our private directory (also in a candidate's environment); in the
# paths a server may leave behind, its display number.
DISPLAY_OPTIONS = "{display_options}"
READY_FD, AUTH_FILE, PRIVATE_DIR = "{ready_fd}", "{auth}", "{private_dir}"
DISPLAY_NUMBER = "{number}"

# Where an X server's keymap compiler (xkbcomp) writes the keymap during its start: the first
# of these the server can write to. The server reads and removes the file before it is ready,
# so only a server killed while starting leaves it.
_KEYMAPS = (f"/var/lib/xkb/server-{DISPLAY_NUMBER}.xkm", f"/tmp/server-{DISPLAY_NUMBER}.xkm")


# How a server takes the sockets of a display we claimed for it: systemd's socket activation
# (LISTEN_FDS: Xvfb), or one -listenfd option each (Xwayland). PICKS_ITS_OWN: it takes none,
# and picks a free display number itself.
SOCKET_ACTIVATION, LISTENFD, PICKS_ITS_OWN = "activation", "listenfd", ""


class ServerSpec(Record):
    """A virtual X server, as data: how it is started, known ready, stopped and cleaned up
    after. xserver.XServer runs it; nothing there depends on which server it is.

    - `sockets`: how it takes a display we claim (SOCKET_ACTIVATION, LISTENFD), so that
      clients may connect before it is ready; PICKS_ITS_OWN: it picks a free number itself and
      is checked once ready. Either way it writes its number to READY_FD once ready.
    - `compositor`: a process it needs, started first, ready once it tells systemd's
      NOTIFY_SOCKET protocol so (READY=1), stopped after the server (weston for Xwayland).
    - `environment`: variables both are given, beside XDG_RUNTIME_DIR (our private directory).
    - `stop_command`: how it is asked to stop once ready (xpra's own `stop`), then
      `stop_signal`; with neither, its process group is killed at once: on a claimed display,
      everything it would clean up on a polite stop is ours.
    - `leftovers`: what it may leave when killed before it was ready (DISPLAY_NUMBER filled in).
    """

    __slots__ = (
        "arguments",
        "compositor",
        "environment",
        "kind",
        "leftovers",
        "log_name",
        "name",
        "sockets",
        "stop_command",
        "stop_signal",
    )

    def __init__(
        self,
        kind: str,
        name: str,
        arguments: tuple[str, ...],
        *,
        sockets: str,
        log_name: str,
        compositor: tuple[str, ...] = (),
        environment: tuple[tuple[str, str], ...] = (),
        stop_command: tuple[str, ...] = (),
        stop_signal: str | None = None,
        leftovers: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.name = name
        self.arguments = arguments
        self.sockets = sockets
        self.log_name = log_name
        self.compositor = compositor
        self.environment = environment
        self.stop_command = stop_command
        self.stop_signal = stop_signal
        self.leftovers = leftovers

    @property
    def binary(self) -> str:
        return self.arguments[0]

    @property
    def takes_sockets(self) -> bool:
        return self.sockets != PICKS_ITS_OWN


class Plan(Record):
    """Everything a run needs downstream of the decisions: the server, the GL candidates in
    order, the screen and the start-up deadline, and why."""

    __slots__ = (
        "candidates",
        "gpu_note",
        "screen",
        "server",
        "server_reason",
        "skipped",
        "timeout",
    )

    def __init__(
        self,
        server: ServerSpec,
        server_reason: str,
        candidates: tuple[Candidate, ...],
        *,
        screen: Screen,
        timeout: float,
        skipped: tuple[str, ...] = (),
        gpu_note: str = "",
    ) -> None:
        self.server = server
        self.server_reason = server_reason
        self.candidates = candidates
        self.screen = screen
        # The longest wait for the server, from its start.
        self.timeout = timeout
        # Modes left out before any probe, each with why.
        self.skipped = skipped
        # Where a GPU is here: why the renderer may still be software, and the fix.
        self.gpu_note = gpu_note

    @property
    def needs_fresh_process(self) -> bool:
        """Whatever the probes say, the child needs a process of its own from its start."""
        return all(candidate.needs_fresh_process for candidate in self.candidates)


def command_line(
    server: ServerSpec, claim: DisplayClaim | None, auth_file: str, private_dir: str
) -> list[str]:
    """The server's planned command line with the values of this start filled in."""
    display_options: list[str] = []
    ready_fd = 3
    if claim is not None:
        # The lock file is ours (the server's own locking would find it taken); without a
        # socket file the abstract socket alone serves. Its sockets come first, at fds 3...
        display_options = [f":{claim.number}", "-nolock"]
        if not claim.has_socket_file:
            display_options += ["-nolisten", "unix"]
        if server.sockets == LISTENFD:
            for fd in range(3, 3 + len(claim.sockets)):
                display_options += ["-listenfd", str(fd)]
        ready_fd += len(claim.sockets)
    values = {READY_FD: str(ready_fd), AUTH_FILE: auth_file, PRIVATE_DIR: private_dir}
    command: list[str] = []
    for part in server.arguments:
        if part == DISPLAY_OPTIONS:
            command += display_options
            continue
        filled = part
        for placeholder, value in values.items():
            filled = filled.replace(placeholder, value)
        command.append(filled)
    return command


def _xvfb_arguments(screen: Screen) -> tuple[str, ...]:
    return (
        "-nolisten",
        "tcp",
        "-auth",
        AUTH_FILE,
        # No reset when the last client leaves: a reset re-reads state for nothing.
        "-noreset",
        "+extension",
        "GLX",
        "-screen",
        "0",
        str(screen),
    )


def _xvfb(facts: HostFacts, screen: Screen) -> ServerSpec:
    environment: tuple[tuple[str, str], ...] = ()
    leftovers: tuple[str, ...] = _KEYMAPS
    wrapper = facts.xvfb_wrapper
    if wrapper is not None:
        # A conda environment's wrapper (BrainVISA's) runs its server with that environment's
        # keymaps, activated or not; the server writes its compiled keymaps beside them.
        environment = (("CONDA_PREFIX", wrapper.prefix),)
        compiled = f"{wrapper.prefix}/share/X11/xkb/compiled/server-{DISPLAY_NUMBER}.xkm"
        leftovers = (*_KEYMAPS, compiled)
    return ServerSpec(
        "xvfb",
        "Xvfb",
        (str(facts.xvfb), DISPLAY_OPTIONS, "-displayfd", READY_FD, *_xvfb_arguments(screen)),
        sockets=SOCKET_ACTIVATION if facts.xvfb_takes_sockets else PICKS_ITS_OWN,
        log_name="xvfb.log",
        environment=environment,
        # A server that picked its number removes its own socket and lock on SIGTERM.
        stop_signal=None if facts.xvfb_takes_sockets else "TERM",
        leftovers=leftovers,
    )


def _xpra(facts: HostFacts, screen: Screen) -> ServerSpec:
    """xpra in the foreground, with its sockets and logs in our private directory. It starts
    its own Xvfb: `setpriv --pdeathsig` makes that one die with xpra, as xpra dies with us,
    so that a SIGKILL anywhere up the chain still leaves no server."""
    import shlex  # xpra only: shlex imports re

    death = (facts.setpriv, "--pdeathsig", "TERM") if facts.setpriv else ()
    xvfb = shlex.join((*death, facts.xvfb or "Xvfb", *_xvfb_arguments(screen)))
    xpra = str(facts.xpra)
    return ServerSpec(
        "xpra",
        "xpra",
        (
            xpra,
            "start",
            "--daemon=no",
            f"--displayfd={READY_FD}",
            f"--xvfb={xvfb}",
            f"--socket-dirs={PRIVATE_DIR}",
            f"--log-dir={PRIVATE_DIR}",
            # Only a display is wanted: none of the session services.
            "--mdns=no",
            "--pulseaudio=no",
            "--notifications=no",
            "--dbus-launch=",
            "--dbus-proxy=no",
            "--dbus-control=no",
            "--systemd-run=no",
            "--start-via-proxy=no",
            "--html=off",
            "--speaker=off",
            "--microphone=off",
            "--webcam=no",
            "--clipboard=no",
            "--printing=no",
            "--file-transfer=no",
            "--bell=no",
            "--system-tray=no",
        ),
        sockets=PICKS_ITS_OWN,
        log_name="xpra.log",
        # xpra's own stop shuts down its Xvfb and removes its sockets.
        stop_command=(xpra, "stop", f"--socket-dirs={PRIVATE_DIR}", f":{DISPLAY_NUMBER}"),
        stop_signal="TERM",
    )


# weston's socket, in the private directory that is its XDG_RUNTIME_DIR.
WAYLAND_SOCKET = "wayland-ana-headless"


def _weston(facts: HostFacts, screen: Screen) -> ServerSpec:
    """A rootful Xwayland on weston's headless back end, for hosts without Xvfb (RHEL 10).
    Xwayland cannot run without a compositor; it takes the size of weston's output."""
    if screen.depth != 24:
        raise SetupError(
            f"--server weston: a rootful Xwayland's depth is 24, not {screen.depth} "
            f"(--screen {screen.width}x{screen.height}x24)"
        )
    return ServerSpec(
        "weston",
        "Xwayland",
        (
            str(facts.xwayland),
            DISPLAY_OPTIONS,
            "-displayfd",
            READY_FD,
            "-nolisten",
            "tcp",
            "-auth",
            AUTH_FILE,
            "-noreset",
        ),
        sockets=LISTENFD,
        log_name="xwayland.log",
        compositor=(
            str(facts.weston),
            "--backend=headless-backend.so",
            # No helper client and no panel: one fullscreen surface, the rootful Xwayland.
            "--shell=kiosk-shell.so",
            "--no-config",
            f"--socket={WAYLAND_SOCKET}",
            "--idle-time=0",
            f"--width={screen.width}",
            f"--height={screen.height}",
            # Says READY=1 on NOTIFY_SOCKET once it accepts clients: no polling for its socket.
            "--modules=systemd-notify.so",
        ),
        environment=(("WAYLAND_DISPLAY", WAYLAND_SOCKET),),
        leftovers=_KEYMAPS,
    )


_SERVER_BUILDERS = {"xvfb": _xvfb, "xpra": _xpra, "weston": _weston}


# What to install for each server, by the distribution's family (os-release's ID and ID_LIKE).
_PACKAGES = {
    "debian": (
        "Debian/Ubuntu: apt-get install",
        {"xvfb": "xvfb", "weston": "weston xwayland", "xpra": "xpra xvfb"},
    ),
    "rhel": (
        "RHEL/Fedora: dnf install",
        {
            "xvfb": "xorg-x11-server-Xvfb",
            "weston": "weston xorg-x11-server-Xwayland",
            "xpra": "xpra xorg-x11-server-Xvfb",
        },
    ),
}


# os-release's IDs, by family.
_FAMILIES = {
    "debian": "debian",
    "ubuntu": "debian",
    "rhel": "rhel",
    "centos": "rhel",
    "fedora": "rhel",
}


def install_hint(facts: HostFacts, *servers: str) -> str:
    """The packages that give one of `servers`: this distribution's, or every family's when
    it is none we know."""
    known = [_FAMILIES[word] for word in facts.distribution if word in _FAMILIES][:1]
    return "; ".join(
        f"{command} " + ", or ".join(packages[server] for server in servers)
        for command, packages in (_PACKAGES[family] for family in known or _PACKAGES)
    )


def choose_server(facts: HostFacts, wanted: str) -> tuple[str, str]:
    """Which server (xvfb, weston, xpra), and why; SetupError, naming what to install, when
    the one asked for, or every one, is missing."""
    has_weston = bool(facts.weston and facts.xwayland)
    if wanted == "xvfb":
        if not facts.xvfb:
            raise SetupError(f"--server xvfb: Xvfb not found ({install_hint(facts, 'xvfb')})")
        return "xvfb", "asked for with --server xvfb"
    if wanted == "weston":
        if not has_weston:
            missing = " and ".join(
                name
                for name, path in (("weston", facts.weston), ("Xwayland", facts.xwayland))
                if not path
            )
            raise SetupError(
                f"--server weston: {missing} not found ({install_hint(facts, 'weston')})"
            )
        return "weston", "asked for with --server weston"
    if wanted == "xpra":
        # xpra runs its own Xvfb: without one it is no server.
        if not (facts.xpra and facts.xvfb):
            missing = "xpra" if not facts.xpra else "xpra's own X server, Xvfb,"
            raise SetupError(f"--server xpra: {missing} not found ({install_hint(facts, 'xpra')})")
        return "xpra", "asked for with --server xpra"
    if facts.xvfb:
        return "xvfb", f"Xvfb found at {facts.xvfb}"
    if has_weston:
        return "weston", "Xvfb not found; weston and Xwayland found (a rootful Xwayland on weston)"
    raise SetupError(
        "no virtual X server: neither Xvfb nor weston and Xwayland were found on PATH "
        f"({install_hint(facts, 'xvfb', 'weston')})"
    )


def _vgl_target(facts: HostFacts, options: Options) -> tuple[str | None, str]:
    if options.vgl_display:
        return options.vgl_display, "the 3D display given by --vgl-display / VGL_DISPLAY"
    if facts.allocated_gpu:
        return facts.allocated_gpu
    if facts.original_display:
        return facts.original_display, (
            f"the original DISPLAY {facts.original_display} as the 3D X server"
        )
    if facts.egl_devices or facts.nvidia_egl:
        return "egl", "VirtualGL's EGL back end on this host's EGL device"
    # Without a GPU device Mesa still offers a software EGL device: worth a probe, which
    # tells whether the renderer is hardware.
    return "egl", "VirtualGL's EGL back end (no GPU device seen; the probe will tell)"


def _virtualgl(facts: HostFacts, options: Options, explicit: bool) -> Candidate | str:
    if not options.allow_virtualgl:
        return "virtualgl: not allowed (--no-virtualgl / ANA_HEADLESS_ALLOW_VIRTUALGL=0)"
    if not facts.vglrun:
        return "virtualgl: vglrun not found on PATH (VirtualGL is not installed)"
    target, why = _vgl_target(facts, options)
    return Candidate(
        mode="virtualgl",
        reason=why,
        prefix=(facts.vglrun, "-d", str(target)),
        require_hardware=not (explicit or options.force_virtualgl),
    )


def _mesa(facts: HostFacts, options: Options) -> Candidate | str:
    if options.mesa_dir:
        if facts.given_mesa_dir is None:
            return f"mesa: no libGL.so.1 in {options.mesa_dir} (--mesa-dir / ANA_HEADLESS_MESA_DIR)"
        directory = facts.given_mesa_dir
        why = f"libGL.so.1 from {directory} (--mesa-dir)"
    elif facts.mesa_dirs:
        directory = facts.mesa_dirs[0]
        why = f"software Mesa libGL.so.1 found in {directory}"
    else:
        return (
            "mesa: no software Mesa libGL.so.1 found (give one with --mesa-dir or "
            "ANA_HEADLESS_MESA_DIR)"
        )
    # GLVND's names lead to the Mesa too, through links right after it on the path.
    links = glvnd_links(directory)
    library_path = facts.loader.get("LD_LIBRARY_PATH")
    value = ":".join(filter(None, (directory, f"{PRIVATE_DIR}/{GLVND_LINKS}", library_path)))
    return Candidate(mode="mesa", reason=why, env_patch={"LD_LIBRARY_PATH": value}, links=links)


def _server_glx(server: str) -> Candidate:
    return Candidate(mode="server", reason=f"the GLX of the virtual server ({server})")


# Where NVIDIA's EGL vendor file is, for a container to bind.
_NVIDIA_VENDOR_FILE = "/usr/share/glvnd/egl_vendor.d/10_nvidia.json"


def gpu_note(facts: HostFacts) -> str:
    """Where GPU devices are here, the likely reason a probe would still reach a software
    renderer, and the fix; empty on a host without a GPU."""
    if facts.nvidia_devices and not facts.nvidia_egl:
        return (
            f"NVIDIA GPU devices are here ({facts.nvidia_devices[0]}), but not NVIDIA's EGL "
            f"vendor file {_NVIDIA_VENDOR_FILE}, so GLVND falls back to Mesa's software "
            "renderer: bind it into the container (apptainer --nv, or "
            f"-B {_NVIDIA_VENDOR_FILE}) or name it in __EGL_VENDOR_LIBRARY_FILENAMES"
        )
    if facts.nvidia_devices:
        return (
            f"NVIDIA GPU devices and EGL vendor file are here ({facts.nvidia_devices[0]}), but "
            "the driver's libraries did not give a hardware renderer (injected only in part, "
            "or built for a newer glibc than this image's?): `ana-headless doctor` loads each "
            "vendor library and says what is missing"
        )
    if facts.egl_devices:
        return (
            f"a GPU render node is here ({facts.egl_devices[0]}), but the renderer is "
            "software: is Mesa's DRI driver for it installed (Debian: libgl1-mesa-dri), and "
            "may this user open it (group render)?"
        )
    return ""


def _version(text: str | None) -> tuple[int, int] | tuple[()]:
    """--require-gl's MAJOR.MINOR (options.py checked it), as numbers to compare."""
    if not text:
        return ()
    major, _, minor = text.partition(".")
    return int(major), int(minor)


def make_plan(facts: HostFacts, options: Options) -> Plan:
    server, server_reason = choose_server(facts, options.server)
    explicit = options.gl != "auto"
    wanted = {
        "auto": ("virtualgl", "server", "mesa"),
        "virtualgl": ("virtualgl",),
        "server": ("server",),
        "mesa": ("mesa",),
    }[options.gl]
    candidates: list[Candidate] = []
    skipped: list[str] = []
    for mode in wanted:
        built: Candidate | str
        if mode == "virtualgl":
            built = _virtualgl(facts, options, explicit)
        elif mode == "mesa":
            built = _mesa(facts, options)
        else:
            built = _server_glx(server)
        if isinstance(built, str):
            skipped.append(built)
        else:
            candidates.append(
                built.replace(
                    min_gl_version=_version(options.require_gl),
                    gpu_required=options.require_gpu,
                )
            )
    if not candidates:
        raise SetupError(f"--gl {options.gl} cannot work here: " + "; ".join(skipped))
    return Plan(
        _SERVER_BUILDERS[server](facts, options.screen),
        server_reason,
        tuple(candidates),
        screen=options.screen,
        timeout=options.timeout,
        skipped=tuple(skipped),
        gpu_note=gpu_note(facts),
    )
