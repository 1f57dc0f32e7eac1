"""Every row of SPEC §4's exit-status table, and SPEC §7's bad input: one clear line, the
right status, nothing left behind (the autouse leak check runs around each test)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import ana_env, run_ana
from tests.security.conftest import in_private_tmp, left_behind


def error_lines(stderr: bytes) -> list[str]:
    lines = stderr.decode().splitlines()
    assert not any("Traceback" in line for line in lines), stderr.decode()
    return lines


def test_child_status_is_returned(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("import sys; sys.exit(42)")
    assert run_ana(["run", str(script)]).returncode == 42


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_child_killed_by_signal_gives_128_plus_n(tmp_path: Path, sig: signal.Signals) -> None:
    script = tmp_path / "s.py"
    script.write_text(
        f"import os, signal; signal.signal({int(sig)}, signal.SIG_DFL) "
        f"if {int(sig)} != 9 else None; os.kill(os.getpid(), {int(sig)})"
    )
    assert run_ana(["run", str(script)]).returncode == 128 + sig


@pytest.mark.parametrize(
    "args, option",
    [
        (["--screen", "0x0x24"], "--screen"),
        (["--screen", "abc"], "--screen"),
        (["--screen", "800x600x7"], "--screen"),
        (["--timeout", "-1"], "--timeout"),
        (["--timeout", "soon"], "--timeout"),
        (["--gl", "opengl"], "--gl"),
        (["--server", "xorg"], "--server"),
    ],
)
def test_invalid_values_are_usage_errors(tmp_path: Path, args: list[str], option: str) -> None:
    script = tmp_path / "never.py"
    script.write_text("open('ran', 'w')")
    result = run_ana(["run", *args, str(script)], cwd=tmp_path)
    assert result.returncode == 2
    last = error_lines(result.stderr)[-1]
    assert last.startswith("Error: Invalid value for") and option in last
    assert not (tmp_path / "ran").exists()


def test_missing_script_is_127(tmp_path: Path) -> None:
    result = run_ana(["run", str(tmp_path / "nope.py")])
    assert result.returncode == 127
    assert error_lines(result.stderr) == [f"ana-headless: script not found: {tmp_path}/nope.py"]


def test_missing_program_is_127() -> None:
    result = run_ana(["exec", "no-such-program-anywhere"])
    assert result.returncode == 127
    assert error_lines(result.stderr) == [
        "ana-headless: no-such-program-anywhere: command not found on PATH"
    ]


def test_script_that_is_a_directory_is_126(tmp_path: Path) -> None:
    result = run_ana(["run", str(tmp_path)])
    assert result.returncode == 126
    assert error_lines(result.stderr) == [f"ana-headless: script is a directory: {tmp_path}"]


def test_unreadable_script_is_126(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    script = tmp_path / "secret.py"
    script.write_text("pass")
    script.chmod(0)
    assert run_ana(["run", str(script)]).returncode == 126


def test_program_not_executable_is_126(tmp_path: Path) -> None:
    program = tmp_path / "tool"
    program.write_text("#!/bin/sh\necho hi\n")
    program.chmod(0o644)
    result = run_ana(["exec", str(program)])
    assert result.returncode == 126
    assert error_lines(result.stderr) == [f"ana-headless: program is not executable: {program}"]


def test_program_with_a_bad_format_is_126(tmp_path: Path) -> None:
    program = tmp_path / "garbage"
    program.write_bytes(b"\x7fELF\x00not really")
    program.chmod(0o755)
    result = run_ana(["exec", str(program)])
    assert result.returncode == 126
    assert len(error_lines(result.stderr)) == 1


def test_no_x_server_at_all_is_125_naming_the_packages(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("pass")
    result = run_ana(["run", str(script)], env=ana_env(PATH=str(tmp_path)))
    assert result.returncode == 125
    (line,) = error_lines(result.stderr)
    assert "apt-get install xvfb, or weston xwayland" in line


def fake_server(tmp_path: Path, body: str) -> dict[str, str]:
    """A fake Xvfb on PATH: the only way to make a server crash or hang on demand."""
    directory = tmp_path / "bin"
    directory.mkdir()
    fake = directory / "Xvfb"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    return ana_env(PATH=f"{directory}:{os.environ['PATH']}")


def test_fake_xvfb_that_dies_is_125_with_its_stderr(tmp_path: Path) -> None:
    env = fake_server(tmp_path, "echo 'Fatal server error: no screens found' >&2; exit 1")
    result = run_ana(["exec", "true"], env=env)
    assert result.returncode == 125
    err = result.stderr.decode()
    assert "Xvfb exited with status 1 before it was ready" in err
    assert "no screens found" in err


def test_fake_xvfb_that_hangs_is_125_after_the_timeout(tmp_path: Path) -> None:
    env = fake_server(tmp_path, "echo 'stuck' >&2; exec sleep 60")
    result = run_ana(["exec", "--timeout", "0.5", "true"], env=env, timeout=20)
    assert result.returncode == 125
    err = result.stderr.decode()
    assert "not ready within 0.5 s" in err and "stuck" in err


def test_dry_run_starts_nothing(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("open('ran', 'w')")
    result = run_ana(["run", "--dry-run", str(script)], cwd=tmp_path)
    assert result.returncode == 0
    assert "server: xvfb" in result.stderr.decode()
    assert not (tmp_path / "ran").exists()


def test_explain_prints_environment_and_command_then_runs(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("print('ran')")
    result = run_ana(["run", "--explain", str(script)])
    assert result.returncode == 0
    err = result.stderr.decode()
    assert "child environment changes:" in err and "DISPLAY=:" in err
    assert "exact command: " in err and str(script) in err
    assert result.stdout == b"ran\n"


def test_version_and_help() -> None:
    assert run_ana(["--version"]).stdout.decode().startswith("ana-headless, version ")
    help_text = run_ana(["run", "--help"]).stdout.decode()
    assert "Examples:" in help_text and "--screen WxHxD" in help_text


def test_stale_lock_of_a_dead_server_is_no_obstacle() -> None:
    # In a private /tmp (planted in the real one, it would race with other runs); the pid is
    # above the kernel's largest possible one: no process has it.
    result = in_private_tmp(f"""
printf '%10d\\n' {2**22 + 12345} > /tmp/.X0-lock
"$ANA" exec sh -c 'echo "display $DISPLAY"'; echo "status $?"
cat /tmp/.X0-lock && rm /tmp/.X0-lock
""")
    assert "status 0" in result.stdout, result.stderr
    # Display numbers are machine-wide (abstract sockets): :0 is the first one ours could be.
    assert "display :" in result.stdout and "display :0\n" not in result.stdout
    assert f"{2**22 + 12345}" in result.stdout, "somebody else's lock is left alone"
    assert not left_behind(result)
