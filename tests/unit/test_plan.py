"""The pure decision: facts and options to a Plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from ana_headless.errors import SetupError
from ana_headless.facts import HostFacts, gather
from ana_headless.options import Options
from ana_headless.plan import make_plan
from ana_headless.screen import Screen

BARE = HostFacts(
    xvfb="/usr/bin/Xvfb",
    xpra=None,
    vglrun=None,
    mesa_dirs=(),
    egl_devices=(),
    nvidia_egl=False,
    original_display=None,
    vgl_display=None,
)


def modes(facts: HostFacts, **options: object) -> list[str]:
    return [c.mode for c in make_plan(facts, Options(**options)).candidates]  # type: ignore[arg-type]


def test_plain_host_uses_the_server_glx() -> None:
    plan = make_plan(BARE, Options())
    assert plan.server.kind == "xvfb"
    assert [c.mode for c in plan.candidates] == ["server"]
    assert any("vglrun not found" in why for why in plan.skipped)
    assert any("no software Mesa" in why for why in plan.skipped)


def test_auto_order_virtualgl_server_mesa() -> None:
    facts = BARE.replace(vglrun="/opt/vgl/bin/vglrun", mesa_dirs=("/usr/local/lib/mesa",))
    plan = make_plan(facts, Options())
    assert [c.mode for c in plan.candidates] == ["virtualgl", "server", "mesa"]
    virtualgl = plan.candidates[0]
    assert virtualgl.require_hardware, "auto keeps VirtualGL for hardware renderers"
    assert virtualgl.prefix == ("/opt/vgl/bin/vglrun", "-d", "egl")
    mesa = plan.candidates[2]
    # GLVND's names lead to the Mesa through links in the run's private directory, made by
    # the session for the probe and the child alike.
    assert mesa.env_patch == {"LD_LIBRARY_PATH": "/usr/local/lib/mesa:{private_dir}/glvnd"}
    assert ("glvnd/libOpenGL.so.0", "/usr/local/lib/mesa/libGL.so.1") in mesa.links
    assert mesa.needs_fresh_process and not plan.candidates[1].needs_fresh_process


def test_vgl_target_prefers_given_then_original_display() -> None:
    facts = BARE.replace(vglrun="vglrun", original_display=":0")
    assert make_plan(facts, Options()).candidates[0].prefix[-1] == ":0"
    chosen = make_plan(facts, Options(vgl_display="/dev/dri/card1")).candidates[0]
    assert chosen.prefix[-1] == "/dev/dri/card1"


def test_force_and_explicit_virtualgl_accept_software() -> None:
    facts = BARE.replace(vglrun="vglrun")
    assert not make_plan(facts, Options(force_virtualgl=True)).candidates[0].require_hardware
    assert not make_plan(facts, Options(gl="virtualgl")).candidates[0].require_hardware


def test_no_virtualgl_never_uses_it() -> None:
    facts = BARE.replace(vglrun="vglrun")
    assert modes(facts, allow_virtualgl=False) == ["server"]
    with pytest.raises(SetupError, match="not allowed"):
        make_plan(facts, Options(gl="virtualgl", allow_virtualgl=False))


def test_forced_mode_that_cannot_work_says_why() -> None:
    with pytest.raises(SetupError, match="vglrun not found"):
        make_plan(BARE, Options(gl="virtualgl"))
    with pytest.raises(SetupError, match="no software Mesa"):
        make_plan(BARE, Options(gl="mesa"))


def test_mesa_dir_without_libgl_is_named(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match=f"no libGL.so.1 in {tmp_path}"):
        make_plan(BARE, Options(gl="mesa", mesa_dir=str(tmp_path)))


def test_mesa_dir_goes_first_on_the_library_path(tmp_path: Path) -> None:
    (tmp_path / "libGL.so.1").write_bytes(b"")
    # The plan is pure: what is in the directory is a fact, gathered beforehand.
    facts = BARE.replace(
        loader={"LD_LIBRARY_PATH": "/opt/lib"},
        given_mesa_dir=gather({}, str(tmp_path)).given_mesa_dir,
    )
    plan = make_plan(facts, Options(gl="mesa", mesa_dir=str(tmp_path)))
    assert plan.candidates[0].env_patch == {
        "LD_LIBRARY_PATH": f"{tmp_path}:{{private_dir}}/glvnd:/opt/lib"
    }
    assert plan.needs_fresh_process


def test_server_choice() -> None:
    with_xpra = BARE.replace(xpra="/usr/bin/xpra")
    assert make_plan(with_xpra, Options()).server.kind == "xvfb"
    assert make_plan(with_xpra, Options(server="xpra")).server.kind == "xpra"
    with pytest.raises(SetupError, match="--server xvfb: Xvfb not found"):
        make_plan(with_xpra.replace(xvfb=None), Options(server="xvfb"))


def test_the_server_is_in_the_plan_as_data() -> None:
    """--dry-run shows it; the display module only fills in what is known at the start, and
    stops it and cleans up after it as its spec says."""
    from ana_headless.plan import command_line

    with_sockets = BARE.replace(xvfb_takes_sockets=True)
    plan = make_plan(with_sockets, Options(screen=Screen(640, 480, 24), timeout=7))
    planned = plan.server
    assert planned.takes_sockets and planned.binary == "/usr/bin/Xvfb"
    assert "-screen" in planned.arguments and "640x480x24" in planned.arguments
    assert plan.screen == Screen(640, 480, 24) and plan.timeout == 7
    filled = command_line(planned, None, "/private/auth", "/private")
    assert filled[:3] == ["/usr/bin/Xvfb", "-displayfd", "3"]
    assert filled[filled.index("-auth") + 1] == "/private/auth"
    # On a claimed display everything it would clean up is ours: killed at once; else asked.
    assert planned.stop_signal is None and planned.leftovers
    picks_its_own = make_plan(BARE, Options()).server
    assert not picks_its_own.takes_sockets and picks_its_own.stop_signal == "TERM"


def test_xpras_own_xvfb_dies_with_it_where_setpriv_is_found() -> None:
    facts = BARE.replace(xpra="/usr/bin/xpra", setpriv="/usr/bin/setpriv")
    server = make_plan(facts, Options(server="xpra")).server
    assert server.stop_command[1:] == ("stop", "--socket-dirs={private_dir}", ":{number}")
    arguments = server.arguments
    assert arguments[:2] == ("/usr/bin/xpra", "start")
    xvfb = next(part for part in arguments if part.startswith("--xvfb="))
    assert xvfb.startswith("--xvfb=/usr/bin/setpriv --pdeathsig TERM /usr/bin/Xvfb ")


def test_weston_is_a_builder_auto_chooses_where_xvfb_is_missing() -> None:
    """A rootful Xwayland on weston's headless back end: the whole server, as data."""
    rhel10 = BARE.replace(xvfb=None, weston="/usr/bin/weston", xwayland="/usr/bin/Xwayland")
    plan = make_plan(rhel10, Options(screen=Screen(800, 600, 24)))
    server = plan.server
    assert server.kind == "weston" and "Xvfb not found" in plan.server_reason
    assert server.binary == "/usr/bin/Xwayland" and server.sockets == "listenfd"
    assert server.compositor[0] == "/usr/bin/weston"
    assert "--width=800" in server.compositor and "--height=600" in server.compositor
    assert "--modules=systemd-notify.so" in server.compositor
    assert ("WAYLAND_DISPLAY", "wayland-ana-headless") in server.environment
    # Xvfb first, where there is one.
    assert make_plan(rhel10.replace(xvfb="/usr/bin/Xvfb"), Options()).server.kind == "xvfb"
    with pytest.raises(SetupError, match="depth is 24, not 16"):
        make_plan(rhel10, Options(screen=Screen(800, 600, 16)))
    with pytest.raises(SetupError, match="--server weston: Xwayland not found"):
        make_plan(rhel10.replace(xwayland=None), Options(server="weston"))


def test_the_claimed_sockets_go_to_xwayland_as_listenfd_options() -> None:
    from ana_headless.claim import DisplayClaim
    from ana_headless.plan import command_line

    rhel10 = BARE.replace(xvfb=None, weston="/usr/bin/weston", xwayland="/usr/bin/Xwayland")
    server = make_plan(rhel10, Options()).server
    claim = DisplayClaim(7, [object(), object()], socket_inode=1, lock_inode=2)  # type: ignore[list-item]
    command = command_line(server, claim, "/private/auth", "/private")
    assert command[:9] == [
        "/usr/bin/Xwayland",
        ":7",
        "-nolock",
        "-listenfd",
        "3",
        "-listenfd",
        "4",
        "-displayfd",
        "5",
    ]


@pytest.mark.parametrize(
    ("distribution", "said"),
    [
        (("debian",), "(Debian/Ubuntu: apt-get install xvfb, or weston xwayland)"),
        (("ubuntu", "debian"), "(Debian/Ubuntu: apt-get install xvfb, or weston xwayland)"),
        (
            ("rocky", "rhel", "centos", "fedora"),
            "(RHEL/Fedora: dnf install xorg-x11-server-Xvfb, or weston xorg-x11-server-Xwayland)",
        ),
        ((), "Debian/Ubuntu: apt-get install xvfb, or weston xwayland; RHEL/Fedora: dnf"),
    ],
)
def test_no_server_names_what_to_install_on_this_distribution(
    distribution: tuple[str, ...], said: str
) -> None:
    with pytest.raises(SetupError, match="no virtual X server") as error:
        make_plan(BARE.replace(xvfb=None, distribution=distribution), Options())
    assert said in str(error.value)


def test_xpra_without_its_own_xvfb_is_no_server() -> None:
    with pytest.raises(SetupError, match="xpra's own X server, Xvfb, not found"):
        make_plan(BARE.replace(xvfb=None, xpra="/usr/bin/xpra"), Options(server="xpra"))
