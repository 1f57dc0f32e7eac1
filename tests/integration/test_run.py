"""`ana-headless run` / `exec` / shebang against the real Xvfb and real Qt/OpenGL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ANA_HEADLESS, GL_CLIENT, ana_env, run_ana

PY = sys.executable


def write_script(tmp_path: Path, body: str, name: str = "script.py") -> Path:
    script = tmp_path / name
    script.write_text(body)
    return script


def test_qt_opengl_frame_has_the_right_pixels(tmp_path: Path) -> None:
    png = tmp_path / "frame.png"
    result = run_ana(["run", str(GL_CLIENT), str(png)])
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["centre"] == [230, 120, 20]
    assert report["corner"] == [30, 60, 90]
    assert report["platform"] == "xcb"
    assert png.stat().st_size > 0
    env = report["env"]
    assert env["ANA_HEADLESS_MODE"] == "server"
    # The renderer the launcher's probe saw is the one the child's Qt context got.
    assert env["ANA_HEADLESS_RENDERER"] == report["renderer"]
    assert env["ANA_HEADLESS_DISPLAY"] == env["DISPLAY"]
    assert os.environ.get("DISPLAY") != env["DISPLAY"]
    assert env["XAUTHORITY"].startswith("/tmp/ana-headless-")
    assert result.stderr == b"", "silent on success"


def test_child_environment_per_spec(tmp_path: Path) -> None:
    script = write_script(tmp_path, "import json, os; print(json.dumps(dict(os.environ)))")
    env = ana_env(
        WAYLAND_DISPLAY="wayland-0",
        QT_QPA_PLATFORM="offscreen",
        XDG_RUNTIME_DIR=None,
        DISPLAY=":4242",
    )
    result = run_ana(["run", str(script)], env=env)
    assert result.returncode == 0, result.stderr.decode()
    child = json.loads(result.stdout)
    assert "WAYLAND_DISPLAY" not in child
    assert "QT_QPA_PLATFORM" not in child
    assert child["DISPLAY"] != ":4242", "a dead DISPLAY is ignored: we start our own"
    runtime = child["XDG_RUNTIME_DIR"]
    assert runtime.startswith("/tmp/ana-headless-")
    assert not os.path.exists(runtime), "the private runtime dir is removed afterwards"


def test_child_keeps_a_runtime_dir_the_user_set(tmp_path: Path) -> None:
    script = write_script(tmp_path, "import os; print(os.environ['XDG_RUNTIME_DIR'])")
    result = run_ana(["run", str(script)], env=ana_env(XDG_RUNTIME_DIR=str(tmp_path)))
    assert result.stdout.decode().strip() == str(tmp_path)


def test_module_form(tmp_path: Path) -> None:
    (tmp_path / "hello_mod.py").write_text(
        "import os, sys; print('module', sys.argv[1:], os.environ['ANA_HEADLESS_MODE'])"
    )
    env = ana_env(PYTHONPATH=str(tmp_path))
    result = run_ana(["run", "-m", "hello_mod", "--help", "-v"], env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "module ['--help', '-v'] server"


def test_exec_runs_any_program() -> None:
    result = run_ana(["exec", "sh", "-c", 'echo "$DISPLAY $ANA_HEADLESS_MODE"; exit 3'])
    assert result.returncode == 3
    display, mode = result.stdout.decode().split()
    assert display.startswith(":") and mode == "server"


def test_shebang_form(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        f"#!{ANA_HEADLESS}\nimport os, sys\n"
        "print(sys.argv[1:], os.environ['ANA_HEADLESS_DISPLAY'][0])\n",
    )
    script.chmod(0o755)
    result = subprocess.run(
        [str(script), "x", "--gl", "y"], capture_output=True, env=ana_env(), check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "['x', '--gl', 'y'] :"


@pytest.mark.parametrize(
    "args",
    [
        ["a b", "it's", 'say "hi"', "line1\nline2", "", "--help", "-v", "*", "$HOME"],
        [os.fsdecode(b"caf\xe9-latin1"), os.fsdecode(b"\xff\xfe"), "\u00e9t\u00e9"],
    ],
)
def test_arguments_reach_the_script_exactly(tmp_path: Path, args: list[str]) -> None:
    script = write_script(
        tmp_path,
        "import os, sys\nsys.stdout.buffer.write(b'\\0'.join(map(os.fsencode, sys.argv[1:])))\n",
    )
    result = run_ana(["run", str(script), *args])
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"\0".join(map(os.fsencode, args))


def test_binary_stdout_is_byte_identical(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        "import sys\n"
        "sys.stdout.buffer.write(bytes(range(256)) * 4000)\n"
        "sys.stderr.write('err\\n')\n",
    )
    direct = subprocess.run([PY, str(script)], capture_output=True, check=True)
    headless = run_ana(["run", str(script)])
    assert headless.returncode == 0
    assert headless.stdout == direct.stdout
    assert headless.stderr == direct.stderr == b"err\n"


def test_stdin_passes_through(tmp_path: Path) -> None:
    script = write_script(tmp_path, "import sys; sys.stdout.write(sys.stdin.read().upper())")
    result = run_ana(["run", str(script)], input=b"hello\n")
    assert result.stdout == b"HELLO\n"


def test_huge_argv(tmp_path: Path) -> None:
    script = write_script(
        tmp_path, "import sys; print(len(sys.argv) - 1, sum(map(len, sys.argv[1:])))"
    )
    args = [f"argument-{i:06d}" for i in range(20000)]
    result = run_ana(["run", str(script), *args])
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == [str(len(args)), str(sum(map(len, args)))]


def test_verbose_says_what_was_set_up(tmp_path: Path) -> None:
    script = write_script(tmp_path, "pass")
    result = run_ana(["run", "-v", str(script)])
    assert result.returncode == 0
    err = result.stderr.decode()
    assert "ana-headless: display :" in err and "GL server: works: " in err


def test_parent_ignoring_sigusr1_and_sigchld(tmp_path: Path) -> None:
    script = write_script(tmp_path, "import os; print(os.environ['ANA_HEADLESS_MODE'])")
    # Xvfb signals its parent with SIGUSR1 when it inherits it ignored; an ignored SIGCHLD
    # would let the kernel reap our child before we read its status.
    wrapper = (
        "import signal, subprocess, sys\n"
        "signal.signal(signal.SIGUSR1, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
        "sys.exit(subprocess.call(sys.argv[1:], restore_signals=False))\n"
    )
    result = subprocess.run(
        [PY, "-c", wrapper, ANA_HEADLESS, "run", str(script)],
        capture_output=True,
        env=ana_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "server"


def in_private_tmp(setup: str, command: str) -> subprocess.CompletedProcess[bytes]:
    """Run `setup` then `command` on a fresh tmpfs /tmp in a private mount namespace, with
    only the directories this test runs from (checkout, virtualenv) bound back into it."""
    if (
        subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False).returncode
        != 0
    ):
        pytest.skip("cannot make a private mount namespace here (needs root)")
    needed = {Path(p).resolve() for p in (ANA_HEADLESS, __file__, sys.executable)}
    in_tmp = sorted({p.parts[2] for p in needed if p.parts[1] == "tmp"})
    old_tmp = Path(tempfile.mkdtemp(dir="/var/tmp"))
    rebind = "".join(
        f' && mkdir -p "/tmp/{d}" && mount --bind "{old_tmp}/{d}" "/tmp/{d}"' for d in in_tmp
    )
    script = (
        f'mount --bind /tmp "{old_tmp}" && mount -t tmpfs none /tmp{rebind} && {setup} && {command}'
    )
    try:
        return subprocess.run(
            ["unshare", "--mount", "sh", "-c", script],
            capture_output=True,
            env=ana_env(),
            timeout=60,
            check=False,
        )
    finally:
        old_tmp.rmdir()


@pytest.mark.parametrize(
    "setup, check",
    [
        # Missing: created as X servers do.
        ("test ! -e /tmp/.X11-unix", 'test -S /tmp/.X11-unix/X"${DISPLAY#:}"'),
        # Not writable, even by root (a read-only mount): the abstract socket alone serves.
        (
            "mkdir -m 1777 /tmp/.X11-unix && mount --bind -o ro /tmp/.X11-unix /tmp/.X11-unix",
            'test ! -e /tmp/.X11-unix/X"${DISPLAY#:}" && xdpyinfo >/dev/null',
        ),
    ],
    ids=["missing", "not-writable"],
)
def test_x11_socket_directory(setup: str, check: str) -> None:
    result = in_private_tmp(setup, f'"{ANA_HEADLESS}" exec sh -c \'{check} && echo "$DISPLAY"\'')
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith(":")
