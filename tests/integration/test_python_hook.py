"""The hook that the launcher gives its Python children (ana_headless/pythonhook): it runs at
their start, patches pyanatomist's socket client when that is imported, and runs the
`sitecustomize` it hides."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ana_env, run_ana

REPORT = (
    "import sys; print(sys.modules['sitecustomize'].__file__); "
    "print(sorted(type(finder).__name__ for finder in sys.meta_path))"
)


def test_a_python_child_gets_the_hook_and_the_sitecustomize_it_hides(tmp_path: Path) -> None:
    # (The launcher's own interpreter runs it too, without a display.)
    (tmp_path / "sitecustomize.py").write_text(
        "import os\nif 'ANA_HEADLESS_DISPLAY' in os.environ: print('the user sitecustomize')\n"
    )
    env = ana_env()
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    result = run_ana(["exec", "python3", "-c", REPORT], env=env)
    assert result.returncode == 0, result.stderr.decode()
    ran, module, finders = result.stdout.decode().splitlines()
    assert ran == "the user sitecustomize" and module == str(tmp_path / "sitecustomize.py")
    assert "_PatchOnImport" in finders


def test_a_nested_run_puts_the_hook_once(tmp_path: Path) -> None:
    script = tmp_path / "path.py"
    script.write_text("import os; print(os.environ['PYTHONPATH'])\n")
    result = run_ana(["run", "--", str(script)])
    assert result.returncode == 0, result.stderr.decode()
    [hook, *rest] = result.stdout.decode().strip().split(":")
    nested = run_ana(["run", str(script)], env=ana_env(PYTHONPATH=result.stdout.decode().strip()))
    assert nested.stdout == result.stdout
    assert hook.endswith("/ana_headless/pythonhook") and hook not in rest
