"""`ana-headless kernel`: kernelspecs that Jupyter finds, and a kernel started by jupyter_client
that renders a checked frame, is interrupted, restarted and shut down, leaving nothing behind.
Every kernelspec goes to a temporary Jupyter directory, never the user's."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import KernelManager
from jupyter_client.blocking import BlockingKernelClient
from PyQt5.QtGui import QImage

from ana_headless.relaunch import launcher_command
from tests.conftest import ana_env, ours_running, run_ana
from tests.integration.planted import imported, plant

BACKGROUND, FOREGROUND = [30, 60, 90], [230, 120, 20]
RENDER_CELL = """\
import json, os, ana_headless, gl_client
from PyQt5.QtWidgets import QApplication
from ana_headless.glprobe import mapped_libraries
app = QApplication.instance() or QApplication([])
frame = gl_client.Frame()
frame.resize(gl_client.SIZE, gl_client.SIZE)
frame.show()
app.processEvents()
frame.grabFramebuffer().save({png!r})
info = ana_headless.ensure_headless()
print(json.dumps({{"info": info.as_dict(), "display": os.environ["DISPLAY"],
                  "libraries": mapped_libraries()}}))
"""
# Anatomist's notebook implementation (the stand-in package), in the same kernel.
ANATOMIST_CELL = """\
a = ana_headless.HeadlessAnatomist("-b", implementation="notebook")
a.createWindow("3D", options={{"hidden": True}}).snapshot({png!r}, 120, 90)
print(json.dumps(a.headless_info.as_dict()))
"""


@pytest.fixture
def jupyter_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Jupyter's directories in tmp_path, for this process's jupyter_client and for the CLI;
    no display, as on a server."""
    dirs = {
        "JUPYTER_DATA_DIR": tmp_path / "data",
        "JUPYTER_CONFIG_DIR": tmp_path / "config",
        "JUPYTER_RUNTIME_DIR": tmp_path / "runtime",
        "JUPYTER_PATH": tmp_path / "prefix" / "share" / "jupyter",
    }
    for name, path in dirs.items():
        monkeypatch.setenv(name, str(path))
    return ana_env(
        DISPLAY=None, ANA_HEADLESS_DISPLAY=None, **{name: str(path) for name, path in dirs.items()}
    )


def ana(args: list[str], env: dict[str, str], status: int = 0) -> str:
    result = run_ana(args, env=env)
    assert result.returncode == status, result.stderr.decode()
    return (result.stdout if status == 0 else result.stderr).decode()


def test_install_list_and_remove_only_our_kernels(
    tmp_path: Path, jupyter_env: dict[str, str]
) -> None:
    data, prefix = jupyter_env["JUPYTER_DATA_DIR"], str(tmp_path / "prefix")
    said = ana(["kernel", "install", "--user"], jupyter_env)
    assert said == f"installed kernel 'ana-headless' in {data}/kernels/ana-headless\n"
    spec = json.loads(Path(data, "kernels", "ana-headless", "kernel.json").read_text())
    assert spec["argv"][:4] == [*launcher_command(), "exec"]
    assert spec["argv"][-4:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    ana(
        ["kernel", "install", "--prefix", prefix, "--name", "Mesa-Kernel", "--gl", "mesa"],
        jupyter_env,
    )
    assert ana(["kernel", "list"], jupyter_env).splitlines() == [
        f"ana-headless\tauto\t{data}/kernels/ana-headless",
        f"mesa-kernel\tmesa\t{prefix}/share/jupyter/kernels/mesa-kernel",
    ]
    # ipykernel's own kernel is not ours to remove.
    ipykernel = Path(data, "kernels", "plain")
    ipykernel.mkdir()
    (ipykernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "plain",
                "language": "python",
            }
        )
    )
    assert "was not installed by ana-headless" in ana(["kernel", "remove", "plain"], jupyter_env, 1)
    assert ipykernel.exists()
    said = ana(["kernel", "remove", "MESA-KERNEL"], jupyter_env)
    assert said == f"removed kernel 'MESA-KERNEL' from {prefix}/share/jupyter/kernels/mesa-kernel\n"
    assert ana(["kernel", "list"], jupyter_env).splitlines() == [
        f"ana-headless\tauto\t{data}/kernels/ana-headless"
    ]
    err = ana(["kernel", "remove", "mesa-kernel"], jupyter_env, 1)
    assert (
        err == "ana-headless: no ana-headless kernel named 'mesa-kernel' (`ana-headless "
        "kernel list` shows them)\n"
    )
    assert "exclude each other" in ana(
        ["kernel", "install", "--user", "--sys-prefix"], jupyter_env, 2
    )


def files(root: Path) -> dict[str, bytes | None]:
    """Every path under `root`, with a file's contents."""
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
        for path in root.rglob("*")
    }


def test_a_name_that_is_no_kernel_name_is_a_usage_error_and_touches_nothing(
    tmp_path: Path, jupyter_env: dict[str, str]
) -> None:
    # jupyter_client lets `.` and `..` through, then replaces kernels/<name>: all kernels, or
    # the whole data directory.
    ana(["kernel", "install", "--user"], jupyter_env)
    before = files(tmp_path)
    accepted = "letters, digits, '.', '_' and '-', beginning with a letter or a digit"
    for name in ["..", ".", "", "a/b", "../kernels", ".hidden", "a b"]:
        said = ana(["kernel", "install", "--user", "--name", name], jupyter_env, 2)
        assert said == f"ana-headless: --name {name!r}: not a kernel name ({accepted})\n"
        said = ana(["kernel", "remove", name], jupyter_env, 2)
        assert said == f"ana-headless: NAME {name!r}: not a kernel name ({accepted})\n"
    assert files(tmp_path) == before
    assert ana(["kernel", "list"], jupyter_env).startswith("ana-headless\tauto\t")


def test_sys_prefix_installs_into_this_pythons_environment(jupyter_env: dict[str, str]) -> None:
    name = f"ana-headless-test-{os.getpid()}"
    try:
        said = ana(["kernel", "install", "--sys-prefix", "--name", name], jupyter_env)
        assert said == f"installed kernel '{name}' in {sys.prefix}/share/jupyter/kernels/{name}\n"
    finally:
        ana(["kernel", "remove", name], jupyter_env)
    assert not Path(sys.prefix, "share", "jupyter", "kernels", name).exists()


@contextmanager
def started_kernel(
    env: dict[str, str], cwd: Path | None = None
) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """The kernel installed as `ana-headless`, started by jupyter_client (in `cwd`, as for a
    notebook there); shut down after."""
    manager = KernelManager(kernel_name="ana-headless")
    manager.start_kernel(env=env, cwd=None if cwd is None else str(cwd))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield manager, client
    finally:
        client.stop_channels()
        if manager.is_alive():
            manager.shutdown_kernel()


def execute(client: BlockingKernelClient, code: str) -> tuple[dict[str, Any], str]:
    """Run a cell; its reply's content and what it printed."""
    printed: list[str] = []

    def output(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])

    reply = client.execute_interactive(code, timeout=60, output_hook=output)
    return reply["content"], "".join(printed)


def pixels(png: Path, x: int, y: int) -> tuple[list[int], list[int]]:
    """The colours of a PNG at (x, y) and in its corner."""
    image = QImage(str(png))
    centre, corner = image.pixelColor(x, y), image.pixelColor(2, 2)
    return (
        [centre.red(), centre.green(), centre.blue()],
        [corner.red(), corner.green(), corner.blue()],
    )


def render(client: BlockingKernelClient, png: Path) -> dict[str, Any]:
    content, printed = execute(client, RENDER_CELL.format(png=str(png)))
    assert content["status"] == "ok", content
    assert pixels(png, 100, 100) == (FOREGROUND, BACKGROUND)
    report: dict[str, Any] = json.loads(printed)
    return report


def test_kernel_renders_is_interrupted_restarted_and_leaves_nothing(
    tmp_path: Path, jupyter_env: dict[str, str]
) -> None:
    ana(["kernel", "install", "--user"], jupyter_env)
    with started_kernel(jupyter_env) as (manager, client):
        report = render(client, tmp_path / "first.png")
        info = report["info"]
        assert info["headless"] and info["server"] == "xvfb"
        assert info["display"] == report["display"]
        assert not info["reexec"], "ensure_headless() in the kernel only reports"
        first_servers = ours_running()
        assert len(first_servers) == 1
        snapshot = tmp_path / "anatomist.png"
        content, printed = execute(client, ANATOMIST_CELL.format(png=str(snapshot)))
        assert content["status"] == "ok", content
        assert json.loads(printed) == {**info, "qtapp": "QApp"}, "it only reports, too"
        assert pixels(snapshot, 60, 45) == ([240, 160, 32], [20, 40, 80])

        # jupyter_client signals the launcher's process group; the kernel survives it.
        message = client.execute("import time\ntime.sleep(60)")
        while client.get_iopub_msg(timeout=30)["content"].get("execution_state") != "busy":
            pass
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == message
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        # A cell sent right after an error may be aborted, as by any ipykernel: send again.
        for _attempt in range(50):
            content, printed = execute(client, "print(os.environ['DISPLAY'])")
            if content["status"] != "aborted":
                break
            time.sleep(0.1)
        assert content["status"] == "ok" and printed == report["display"] + "\n"
        assert ours_running() == first_servers, "the same server, still up"

        manager.restart_kernel(now=False)
        client.wait_for_ready(timeout=60)
        render(client, tmp_path / "after-restart.png")
        servers = ours_running()
        assert len(servers) == 1 and not servers & first_servers, "the old server is gone"

        # Jupyter's kill: SIGKILL to the launcher's process group; its watcher cleans up.
        manager.shutdown_kernel(now=True)
    deadline = time.monotonic() + 5
    while ours_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ours_running()


def test_the_kernel_imports_nothing_from_the_notebooks_directory(
    tmp_path: Path, jupyter_env: dict[str, str]
) -> None:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    markers = plant(notebooks)
    ana(["kernel", "install", "--user"], jupyter_env)
    with started_kernel(jupyter_env, cwd=notebooks) as (_manager, client):
        content, printed = execute(client, "import os\nprint(os.getcwd(), os.environ['DISPLAY'])")
    assert content["status"] == "ok", content
    assert printed.split()[0] == str(notebooks)
    assert not imported(markers)


@pytest.mark.parametrize("mode", ["mesa", "virtualgl"])
def test_a_kernel_in_a_mode_that_needs_loader_variables(
    tmp_path: Path, jupyter_env: dict[str, str], request: pytest.FixtureRequest, mode: str
) -> None:
    if mode == "mesa":
        jupyter_env["ANA_HEADLESS_MESA_DIR"] = request.getfixturevalue("mesa_dir")
    else:
        jupyter_env["PATH"] = request.getfixturevalue("vglrun_path")
    ana(["kernel", "install", "--user", "--gl", mode], jupyter_env)
    with started_kernel(jupyter_env) as (_manager, client):
        report = render(client, tmp_path / "frame.png")
    assert report["info"]["mode"] == mode
    if mode == "mesa":
        libgl = [lib for lib in report["libraries"] if "libGL.so" in os.path.basename(lib)]
        assert libgl and all(lib.startswith(jupyter_env["ANA_HEADLESS_MESA_DIR"]) for lib in libgl)
    else:
        assert any(lib.endswith("libvglfaker.so") for lib in report["libraries"])
