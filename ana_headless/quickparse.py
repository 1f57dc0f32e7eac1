"""Reading a plain `run`, `exec` or shebang command line without click.

Importing click costs the launcher more than half of what the X server needs to start
(import costs: benchmarks/README.md): the time in which the child could already be starting.
So `quick_parse` reads the common command lines (options from the table in options.py) itself,
and hands every other one (help, doctor, an unusual spelling, a value that is not plainly
valid) to click, which then parses, validates and explains as before. A unit test checks that
both agree wherever the fast path answers. Light on imports, on purpose.
"""

from __future__ import annotations

from .options import COMMANDS, SPECS, build_request, convert_value, value_from_environment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from .options import Request


def quick_parse(args: Sequence[str], env: Mapping[str, str]) -> Request | None:
    """The request of a plain `run`, `exec` or shebang command line, exactly as click would
    read it; None for anything else."""
    if not args or args[0] in ("--help", "-h", "--version", "doctor", "kernel"):
        return None
    command = args[0] if args[0] in COMMANDS else "run"
    rest = list(args[1:] if args[0] in COMMANDS else args)
    by_flag = {
        flag: spec for spec in SPECS if command == "run" or not spec.run_only for flag in spec.flags
    }
    given: dict[str, Any] = {}
    module = None
    while rest:
        token = rest.pop(0)
        if token == "--":
            break
        if command == "run" and token.startswith("-m") and not token.startswith("--"):
            if token == "-m" and not rest:
                return None
            module = token[2:] or rest.pop(0)
            break
        if not token.startswith("-") or token == "-":
            rest.insert(0, token)
            break
        name, has_value, text = token.partition("=")
        spec = by_flag.get(name)
        if spec is None:
            # -vv is -v twice; anything else unknown (-h, clusters, typos) is click's to read.
            if token[1:] and set(token[1:]) == {"v"}:
                given["verbose"] = given.get("verbose", 0) + len(token) - 1
                continue
            return None
        if spec.kind in ("flag", "count", "switch"):
            if has_value:
                return None
            if spec.kind == "count":
                given[spec.dest] = given.get(spec.dest, 0) + 1
            else:
                given[spec.dest] = spec.kind == "flag" or name == spec.flags[0]
            continue
        if not has_value:
            if not rest:
                return None
            text = rest.pop(0)
        value = convert_value(spec, text)
        if value is None:
            return None
        given[spec.dest] = value
    values: dict[str, Any] = {}
    for spec in SPECS:
        values[spec.dest] = (
            given[spec.dest] if spec.dest in given else value_from_environment(spec, env)
        )
        if values[spec.dest] is None and spec.envvar and env.get(spec.envvar):
            return None
    if module is None and not rest:
        return None
    return build_request(command, values, rest, module)
