"""Dask workers headless (README "Many subjects, many machines"): a real LocalCluster on
loopback whose worker processes run under the launcher, each on a display of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pytest
from dask.distributed import Client, LocalCluster

from ana_headless.daskworker import HeadlessWorker
from tests.conftest import EXAMPLES, FIXTURES, PROBE_CACHE, check_snapshot, leftovers
from tests.integration.planted import imported, plant
from tests.integration.test_signals import process_of

SUBJECTS = 50


@pytest.fixture
def headless_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start a LocalCluster of 2 headless workers, one thread each, loopback only, no
    dashboard: `start(**worker_kwargs)` gives its Client. Every file of dask's in tmp_path.
    The task module is imported here as the workers import it, by name."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.syspath_prepend(str(FIXTURES))
    clusters: list[LocalCluster] = []

    def start(env: dict[str, str] | None = None, **worker_kwargs: Any) -> Client:
        worker_env = {
            "PYTHONPATH": f"{FIXTURES}:{EXAMPLES}",
            "DASK_TEMPORARY_DIRECTORY": str(tmp_path),
            "ANA_HEADLESS_PROBE_CACHE": str(PROBE_CACHE),
            **(env or {}),
        }
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_class=HeadlessWorker,
            env=worker_env,
            **worker_kwargs,
        )
        clusters.append(cluster)
        client = Client(cluster)
        client.wait_for_workers(2, timeout=120)
        return client

    with dask.config.set({"temporary-directory": str(tmp_path)}):
        yield start
    for cluster in clusters:
        cluster.close()


def listening_addresses(pids: set[int]) -> set[str]:
    """The local addresses of the TCP sockets these processes listen on (/proc/net/tcp*)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                inodes.add(os.readlink(fd).removeprefix("socket:[").removesuffix("]"))
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address = bytes.fromhex(fields[1].split(":")[0])
                found.add(
                    socket.inet_ntop(
                        socket.AF_INET if len(address) == 4 else socket.AF_INET6, address[::-1]
                    )
                )
    return found


def server_of(private_dir: str) -> bool:
    try:
        process_of(private_dir, b"Xvfb")
    except AssertionError:
        return False
    return True


def render(client: Client, subjects: range, outdir: Path) -> list[dict[str, Any]]:
    from dask_tasks import render_subject

    futures = client.map(render_subject, subjects, outdir=str(outdir), pure=False)
    results: list[dict[str, Any]] = client.gather(futures)
    for result in results:
        check_snapshot(Path(result["path"]))
    return results


def test_workers_render_on_displays_of_their_own_and_a_killed_one_leaves_nothing(
    headless_cluster: Any, tmp_path: Path
) -> None:
    client = headless_cluster()
    results = render(client, range(SUBJECTS), tmp_path)

    assert sorted(r["subject"] for r in results) == list(range(SUBJECTS))
    assert len({Path(r["path"]).read_bytes() for r in results}) == SUBJECTS
    displays = {r["pid"]: (r["display"], r["xauthority"]) for r in results}
    assert len(displays) == 2, "both workers rendered"
    assert len({display for display, _ in displays.values()}) == 2, "a display per worker"
    for result in results:
        # Each worker process kept the one display it started with, and its tasks see it.
        assert (result["display"], result["xauthority"]) == displays[result["pid"]]
        assert result["info"]["headless"] and result["info"]["display"] == result["display"]
        assert result["info"]["mode"] == "server" and result["info"]["server"] == "xvfb"

    # The scheduler (in this process) and the workers listen on loopback only.
    assert listening_addresses({os.getpid(), *displays}) == {"127.0.0.1"}

    killed, survivor = displays
    killed_dir = os.path.dirname(displays[killed][1])
    os.kill(killed, signal.SIGKILL)
    # Its launcher stops its display while the other worker goes on (and after the cluster
    # closes, the autouse no_leaks fixture finds nothing at all).
    number = displays[killed][0].lstrip(":")
    its_own = {f"/tmp/.X{number}-lock", f"/tmp/.X11-unix/X{number}", killed_dir}
    deadline = time.monotonic() + 10
    while (its_own & leftovers() or server_of(killed_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not its_own & leftovers() and not server_of(killed_dir)
    more = render(client, range(SUBJECTS, SUBJECTS + 4), tmp_path)
    assert {r["pid"] for r in more} == {survivor}


def test_workers_import_nothing_from_the_working_directory(
    headless_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    markers = plant(project)
    monkeypatch.chdir(project)
    client = headless_cluster()
    results = render(client, range(4), tmp_path)
    assert all(result["info"]["headless"] for result in results)
    assert not imported(markers)


@pytest.mark.vendor
@pytest.mark.parametrize("mode", ["virtualgl", "mesa"])
def test_gl_modes_that_need_loader_variables_work_in_workers(
    headless_cluster: Any, tmp_path: Path, mode: str, request: pytest.FixtureRequest
) -> None:
    if mode == "virtualgl":
        env = {"PATH": request.getfixturevalue("vglrun_path")}
        # The faker, which vglrun preloads.
        options, library = ["--gl", "virtualgl"], "/libvglfaker.so"
    else:
        mesa = request.getfixturevalue("mesa_dir")
        # That directory's libGL, found through LD_LIBRARY_PATH.
        env, options = {}, ["--gl", "mesa", "--mesa-dir", mesa]
        library = os.path.join(os.path.realpath(mesa), "libGL.so")
    client = headless_cluster(env=env, launcher_options=options)
    results = render(client, range(4), tmp_path)
    for result in results:
        assert result["info"]["mode"] == mode
        assert any(library in path for path in result["libraries"]), result["libraries"]
