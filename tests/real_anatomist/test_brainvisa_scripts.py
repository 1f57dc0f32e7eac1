"""BrainVISA's own headless set-up, unchanged, under `ana-headless run`: soma-base's
`soma.qt_gui.headless.setup_headless()` (soma-base from PyPI) and pyanatomist's
`anatomist.headless.HeadlessAnatomist()`, with the real Anatomist.

On the run's display soma's probe (a subprocess that makes a GL context on Qt's `offscreen`
platform) succeeds, so soma keeps that display, starts no X server of its own and gives the
script an `offscreen` QApplication; the `anatomist` program, started by the script, opens its
windows on the run's display with the run's GL mode. soma's result does not know that mode
(it says virtualgl None and mesa False whatever the mode); `ana_headless.ensure_headless()`,
called after it, does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.real_anatomist.conftest import (
    assert_brainvisa_kept_the_runs_display,
    gl_mode_options,
    run_under,
)

pytestmark = pytest.mark.anatomist


@pytest.mark.parametrize(
    "how, mode",
    [("soma", "server"), ("soma", "mesa"), ("soma", "virtualgl"), ("upstream", "server")],
)
def test_brainvisa_headless_keeps_the_runs_display(
    soma_env: dict[str, str], tmp_path: Path, how: str, mode: str, request: pytest.FixtureRequest
) -> None:
    env, launcher = gl_mode_options(mode, request, soma_env)
    starts, report = run_under(env, tmp_path, "--how", how, launcher=launcher)
    assert len(starts) == 1
    assert report["anatomist"]["display"] == report["display"]
    assert_brainvisa_kept_the_runs_display(report, mode, launcher)
