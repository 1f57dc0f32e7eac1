"""The options table: what a re-executed process passes on is read back as it was."""

from __future__ import annotations

import pytest

from ana_headless.options import Options, launcher_arguments
from ana_headless.quickparse import quick_parse
from ana_headless.screen import Screen


@pytest.mark.parametrize(
    "options",
    [
        Options(),
        Options(gl="mesa", mesa_dir="/", screen=Screen(640, 480, 16), timeout=2.5),
        Options(gl="virtualgl", vgl_display="egl", allow_virtualgl=True, force_virtualgl=True),
        Options(server="xpra", allow_virtualgl=False),
    ],
)
def test_options_passed_on_as_arguments_read_back_the_same(options: Options) -> None:
    request = quick_parse(["exec", *launcher_arguments(options), "true"], {})
    assert request is not None and request.options == options
