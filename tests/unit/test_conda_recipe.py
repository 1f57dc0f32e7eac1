"""conda/recipe.yaml agrees with setup.cfg: the version, the console entry points, every
install_requires dependency (with its version bounds) and python_requires among the run
requirements, the summary, and the license and homepage the project declares (or does not)."""

from __future__ import annotations

import ast
import configparser
import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "conda" / "recipe.yaml"
SETUP_CFG = ROOT / "setup.cfg"

# setup.cfg's install_requires under their conda-forge names. A requirement added to setup.cfg
# without an entry here fails the test: look its conda name up, add it here and to the recipe.
CONDA_NAMES = {
    "click": "click",
    "sh": "sh",
}
# What the recipe says while setup.cfg declares no license (it guesses none).
NO_LICENSE = "LicenseRef-Unspecified"

_JINJA = re.compile(r"\$\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# A conda requirement as the recipe writes them: a name (virtual packages start with "__"),
# then a version, with or without a space.
_CONDA_REQUIREMENT = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9._-]*)\s*([<>=!~*0-9][^\s]*)?$")
# A PEP 508 requirement as setup.cfg writes them here: a name, extras, version specifiers.
_PIP_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([<>=!~][^;]*)?$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _spec(text: str | None) -> str:
    """A version specifier with its spaces removed: `>= 8.0` and `>=8.0` are one."""
    return re.sub(r"\s+", "", text or "")


def read_setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    with SETUP_CFG.open() as handle:
        config.read_file(handle)
    return config


def read_recipe() -> dict[str, Any]:
    recipe = yaml.safe_load(RECIPE.read_text())
    assert isinstance(recipe, dict), f"{RECIPE}: not a mapping"
    return recipe


def project_version(config: configparser.ConfigParser) -> str:
    """setup.cfg's version: a literal, or `attr: package.module.NAME`, read from the module's
    source (a string constant assigned at its top level) without importing it."""
    value = config["metadata"]["version"].strip()
    if not value.startswith("attr:"):
        return value
    dotted = value.removeprefix("attr:").strip()
    module, _, attribute = dotted.rpartition(".")
    path = ROOT.joinpath(*module.split("."))
    source = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
    for node in ast.parse(source.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == attribute for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise AssertionError(f"setup.cfg's version {value!r}: no string {attribute} in {source}")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def render(value: Any, context: dict[str, Any]) -> str:
    """A recipe string with its `${{ NAME }}` taken from the context; anything else Jinja
    (expressions, filters, selectors) is beyond this reader, and fails."""
    assert isinstance(value, str), f"expected a string in the recipe, got {value!r}"
    rendered = _JINJA.sub(lambda match: str(context[match.group(1)]), value)
    assert "${{" not in rendered, f"{value!r}: only ${{{{ NAME }}}} of the context is read here"
    return rendered


def _run_requirements(recipe: dict[str, Any], key: str = "run") -> dict[str, str]:
    """The recipe's requirements of one kind, as {conda name: version spec}; a selector
    (if/then) is an error here, since a noarch recipe should have none."""
    context = recipe.get("context", {})
    specs: dict[str, str] = {}
    for entry in recipe.get("requirements", {}).get(key, []):
        match = _CONDA_REQUIREMENT.match(render(entry, context).strip())
        assert match, f"recipe requirement {entry!r}: not NAME [VERSION]"
        specs[match.group(1)] = _spec(match.group(2))
    return specs


def _pip_requirements(text: str) -> dict[str, str]:
    requirements: dict[str, str] = {}
    for line in _lines(text):
        match = _PIP_REQUIREMENT.match(line)
        assert match, f"setup.cfg requirement {line!r}: markers or URLs need a hand translation"
        requirements[_normalise(match.group(1))] = _spec(match.group(3))
    return requirements


def disagreements(config: configparser.ConfigParser, recipe: dict[str, Any]) -> list[str]:
    """Where the recipe and setup.cfg differ, one line each; empty when they agree."""
    found: list[str] = []
    context = recipe.get("context", {})
    package = recipe.get("package", {})

    for key, ours in (("version", project_version(config)), ("name", config["metadata"]["name"])):
        theirs = render(package.get(key), context)
        if theirs != ours:
            found.append(f"{key}: recipe {theirs!r}, setup.cfg {ours!r}")

    entry_points = (
        config["options.entry_points"] if config.has_section("options.entry_points") else {}
    )
    scripts = {
        re.sub(r"\s*=\s*", " = ", line)
        for group in ("console_scripts", "gui_scripts")
        for line in _lines(entry_points.get(group, ""))
    }
    recipe_scripts = {
        re.sub(r"\s*=\s*", " = ", render(line, context))
        for line in recipe.get("build", {}).get("python", {}).get("entry_points", [])
    }
    if scripts != recipe_scripts:
        found.append(
            f"entry points: setup.cfg only {sorted(scripts - recipe_scripts)}, "
            f"recipe only {sorted(recipe_scripts - scripts)}"
        )

    run = _run_requirements(recipe)
    python = _spec(config["options"].get("python_requires"))
    if run.get("python") != python:
        found.append(f"python: recipe run {run.get('python')!r}, setup.cfg {python!r}")
    for pip_name, spec in _pip_requirements(config["options"].get("install_requires", "")).items():
        conda_name = CONDA_NAMES.get(pip_name)
        if conda_name is None:
            found.append(f"{pip_name}: no conda name in this test's CONDA_NAMES")
        elif conda_name not in run:
            found.append(f"{pip_name}: not among the recipe's run requirements ({conda_name})")
        elif run[conda_name] != spec:
            found.append(f"{pip_name}: recipe {conda_name} {run[conda_name]!r}, setup.cfg {spec!r}")

    about = recipe.get("about", {})
    description = config["metadata"].get("description")
    if about.get("summary") != description:
        found.append(f"summary: recipe {about.get('summary')!r}, setup.cfg {description!r}")
    license_ = config["metadata"].get("license", NO_LICENSE)
    if about.get("license") != license_:
        found.append(f"license: recipe {about.get('license')!r}, setup.cfg {license_!r}")
    if about.get("homepage") != config["metadata"].get("url"):
        found.append(
            f"homepage: recipe {about.get('homepage')!r}, "
            f"setup.cfg url {config['metadata'].get('url')!r}"
        )
    return found


def test_recipe_agrees_with_setup_cfg() -> None:
    assert disagreements(read_setup_cfg(), read_recipe()) == []


def test_recipe_is_a_noarch_pip_install_of_this_tree() -> None:
    recipe = read_recipe()
    build = recipe["build"]
    assert build["noarch"] == "python"
    # Dependencies come from the recipe's requirements, never from PyPI at build time.
    assert "--no-deps" in build["script"].split() and "pip install ." in build["script"]
    assert (RECIPE.parent / recipe["source"]["path"]).resolve() == ROOT
    assert {"python", "pip", "setuptools", "wheel"} <= set(_run_requirements(recipe, "host"))


def _recipe_with(change: Any) -> dict[str, Any]:
    recipe = copy.deepcopy(read_recipe())
    change(recipe)
    return recipe


def _replace_run(recipe: dict[str, Any], old: str, new: str | None) -> None:
    run = recipe["requirements"]["run"]
    index = run.index(old)
    if new is None:
        del run[index]
    else:
        run[index] = new


@pytest.mark.parametrize(
    "change, what",
    [
        (lambda r: r["context"].update(version="0.1.1"), "version"),
        (lambda r: r["package"].update(name="ana_headless"), "name"),
        (
            lambda r: r["build"]["python"].update(
                entry_points=["ana-headless = ana_headless.cli:main"]
            ),
            "entry points",
        ),
        (
            lambda r: r["build"]["python"]["entry_points"].append("ana = ana_headless.entry:main"),
            "entry points",
        ),
        (lambda r: _replace_run(r, "click >=8.0", None), "click"),
        (lambda r: _replace_run(r, "sh >=2.0", "sh >=1.0"), "sh"),
        (lambda r: _replace_run(r, "python >=3.10", "python >=3.9"), "python"),
        (lambda r: r["about"].update(summary="something else"), "summary"),
        (lambda r: r["about"].update(license="MIT"), "license"),
        (lambda r: r["about"].update(homepage="https://example.org"), "homepage"),
    ],
)
def test_a_drifted_recipe_is_reported(change: Any, what: str) -> None:
    found = disagreements(read_setup_cfg(), _recipe_with(change))
    assert len(found) == 1 and found[0].startswith(what), found


@pytest.mark.parametrize(
    "section, key, value, what",
    [
        ("metadata", "version", "2.0", "version"),
        ("options", "install_requires", "\nclick>=8.0\nsh>=2.0\njsonschema>=4", "jsonschema"),
        ("options", "install_requires", "\nclick>=8.1\nsh>=2.0", "click"),
        (
            "options.entry_points",
            "console_scripts",
            "\nana-headless = ana_headless.entry:run",
            "entry points",
        ),
        ("metadata", "license", "BSD-3-Clause", "license"),
    ],
)
def test_a_drifted_setup_cfg_is_reported(section: str, key: str, value: str, what: str) -> None:
    config = read_setup_cfg()
    config[section][key] = value
    found = disagreements(config, read_recipe())
    assert len(found) == 1 and found[0].startswith(what), found
