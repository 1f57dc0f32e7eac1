"""`ana-headless doctor`: the host's facts, every GL candidate probed, what `run` would use,
and the next step when nothing works. `--json` gives the same for scripts (schema:
doctor-schema.json beside this file)."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import HeadlessError, UsageError
from .facts import EGL_VENDOR_DIRS, HostFacts, gather
from .glchoice import probe_key_for
from .gpucheck import check
from .options import Options, options_from_environment
from .plan import gpu_note, install_hint, make_plan
from .probe import ProbeResult, remember, run_probe
from .probecache import ProbeCache, cache_path
from .session import Session

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .slurmgpu import EglDevices

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "doctor-schema.json")


def _next_steps(facts: HostFacts, results: list[ProbeResult]) -> list[str]:
    steps: list[str] = []
    if not (facts.xvfb or (facts.weston and facts.xwayland)):
        steps.append(f"install a virtual X server ({install_hint(facts, 'xvfb', 'weston')})")
    if any(r.candidate.mode == "server" and not r.ok for r in results):
        steps.append(
            "for the server's own GLX (Mesa llvmpipe): apt-get install libgl1-mesa-dri libglx-mesa0"
        )
    if not facts.mesa_dirs:
        steps.append(
            "for a software Mesa through LD_LIBRARY_PATH, set ANA_HEADLESS_MESA_DIR "
            "to the directory holding its libGL.so.1"
        )
    if not facts.vglrun:
        steps.append("for GPU rendering, install VirtualGL (vglrun) on a host with a GPU")
    return steps


def _gpu_report(
    facts: HostFacts, env: Mapping[str, str], egl_vendor_dirs: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "devices": [*facts.nvidia_devices, *facts.egl_devices],
        "vendor_libraries": [
            dataclasses.asdict(checked)
            for checked in check(env, bool(facts.nvidia_devices), egl_vendor_dirs)
        ],
        "note": gpu_note(facts),
    }


def _egl_devices_json(listed: EglDevices | None) -> dict[str, Any] | None:
    if listed is None:
        return None
    return {"devices": [d.as_dict() for d in listed.devices], "problem": listed.problem}


def _result_json(result: ProbeResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "accepted": result.accepted,
        "summary": result.summary(),
        "report": dict(result.report),
        "problem": result.problem,
    }


def diagnose(
    env: Mapping[str, str],
    *,
    dev: str = "/dev",
    egl_vendor_dirs: tuple[str, ...] = EGL_VENDOR_DIRS,
    gpu_roots: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Probe every candidate of the plan that the environment's options give (the plan of
    `run` without options) on one virtual display, and load every GL driver library GLVND
    would. `dev`, `egl_vendor_dirs` and `gpu_roots`: where GPU devices, vendor files, and the
    NVIDIA driver's GPUs and DRM cards are (facts.gather)."""
    problem = ""
    try:
        options = options_from_environment(env)
    except UsageError as error:
        options, problem = Options(), str(error)
    facts = gather(
        env, options.mesa_dir, dev=dev, egl_vendor_dirs=egl_vendor_dirs, gpu_roots=gpu_roots
    )
    report: dict[str, Any] = {
        "version": __version__,
        "facts": {
            **facts.as_dict(),
            "xvfb_wrapper": facts.xvfb_wrapper.as_dict() if facts.xvfb_wrapper else None,
            "gpu_egl_devices": _egl_devices_json(facts.gpu_egl_devices),
        },
        "gpu": _gpu_report(facts, env, egl_vendor_dirs),
        "server": None,
        "candidates": [],
        "skipped": [],
        "chosen": None,
        "problem": problem,
        "next_steps": [],
    }
    results: list[ProbeResult] = []
    try:
        plan = make_plan(facts, options)
        report["server"] = {
            "kind": plan.server.kind,
            "reason": plan.server_reason,
            "command": list(plan.server.arguments),
            "compositor": list(plan.server.compositor),
        }
        report["skipped"] = list(plan.skipped)
        with Session(plan) as display:
            display_env = display.child_env(env)
            display.server.wait_ready()
            report["server"]["display"] = display.server.display
            results = [
                run_probe(candidate, display.candidate_env(candidate, display_env))
                for candidate in plan.candidates
            ]
            # A server that ended meanwhile failed the probes, not the host.
            server_up = display.server.running
        # Fresh probes: doctor also refreshes what `run` will find in the probe cache.
        cache = ProbeCache(cache_path(env))
        for result in results:
            if server_up:
                remember(cache, probe_key_for(plan, result.candidate, env), result)
        cache.save()
    except HeadlessError as error:
        report["problem"] = str(error) + (f": {error.details}" if error.details else "")
    for result in results:
        candidate = result.candidate
        report["candidates"].append(
            {
                "mode": candidate.mode,
                "reason": candidate.reason,
                "command_prefix": list(candidate.prefix),
                "env": dict(candidate.env_patch),
                "require_hardware": candidate.require_hardware,
                "probe": _result_json(result),
            }
        )
    chosen = next((r for r in results if r.accepted), None)
    if chosen is not None:
        report["chosen"] = {
            "mode": chosen.candidate.mode,
            "renderer": chosen.renderer,
            "software": bool(chosen.report.get("software")),
        }
    elif not report["problem"]:
        report["problem"] = "no GL candidate works on the virtual display"
    report["next_steps"] = _next_steps(facts, results) + _gpu_steps(report["gpu"])
    return report


def _gpu_steps(gpu: Mapping[str, Any]) -> list[str]:
    steps = [gpu["note"]] if gpu["note"] else []
    steps += [
        f"{library['library']} (from {library['named_by']}) does not load: {library['problem']}"
        for library in gpu["vendor_libraries"]
        if library["problem"]
    ]
    return steps


def render_text(report: Mapping[str, Any]) -> str:
    facts = report["facts"]
    rows = [
        ("Xvfb", facts["xvfb"] or "not found"),
        ("weston", facts["weston"] or "not found"),
        ("Xwayland", facts["xwayland"] or "not found"),
        ("xpra", facts["xpra"] or "not found"),
        ("vglrun", facts["vglrun"] or "not found"),
        ("software Mesa", ", ".join(facts["mesa_dirs"]) or "none found"),
        ("EGL devices", ", ".join(facts["egl_devices"]) or "none"),
        ("NVIDIA EGL", "yes" if facts["nvidia_egl"] else "no"),
        ("original DISPLAY", facts["original_display"] or "unset"),
        ("VGL_DISPLAY", facts["vgl_display"] or "unset"),
        (
            "allocated GPU",
            "{} ({})".format(*facts["allocated_gpu"]) if facts["allocated_gpu"] else "none",
        ),
    ]
    rows += [(name, value) for name, value in facts["loader"].items()]
    width = max(len(name) for name, _ in rows)
    lines = [f"ana-headless {report['version']}", "", "Host:"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    if report["server"]:
        server = report["server"]
        lines += [
            "",
            f"Server: {server['kind']} ({server['reason']})"
            + (f", probed on {server['display']}" if "display" in server else ""),
        ]
    lines += ["", "GL candidates, in the order auto tries them (=> chosen, ok works, -- not used):"]
    chosen_mode = (report["chosen"] or {}).get("mode")
    for candidate in report["candidates"]:
        mark = "-- "
        if candidate["probe"]["accepted"]:
            mark = "=> " if candidate["mode"] == chosen_mode else "ok "
        lines.append(f"  {mark}{candidate['probe']['summary']}")
        if candidate["command_prefix"]:
            lines.append(f"       prefix: {shlex.join(candidate['command_prefix'])}")
        lines += [f"       env: {k}={v}" for k, v in candidate["env"].items()]
        if candidate["probe"]["accepted"]:
            probe = candidate["probe"]["report"]
            lines.append(
                f"       GLX vendor {probe.get('glx_client_vendor')!r}, "
                f"OpenGL {probe.get('version')}, direct {probe.get('direct')}"
            )
    lines += [f"  -- {why}" for why in report["skipped"]]
    lines.append("")
    gpu = report["gpu"]
    lines += ["GPU:", f"  devices  {', '.join(gpu['devices']) or 'none'}"]
    lines += [
        f"  {library['named_by']}: {library['library'] or '?'}: "
        + ("loads" if not library["problem"] else "does not load")
        for library in gpu["vendor_libraries"]
    ]
    lines += _egl_devices_text(facts["gpu_egl_devices"], facts["allocated_gpu"])
    lines.append("")
    if report["chosen"]:
        chosen = report["chosen"]
        kind = "software" if chosen["software"] else "hardware"
        lines.append(f"run would use: {chosen['mode']} ({kind}: {chosen['renderer']})")
    else:
        lines.append(f"no working mode: {report['problem']}")
    if report["next_steps"]:
        lines += ["", "Next steps:"] + [f"  - {step}" for step in report["next_steps"]]
    return "\n".join(lines)


def _egl_devices_text(
    listed: Mapping[str, Any] | None, allocated: list[str] | tuple[str, str] | None
) -> list[str]:
    """The EGL devices listed for the allocated GPU, numbered as VirtualGL numbers them, the
    one VirtualGL is given marked (`egl` is its first)."""
    if listed is None:
        return []
    if listed["problem"]:
        return [f"  EGL devices not listed: {listed['problem']}"]
    given = allocated[0] if allocated else None
    lines = ["  EGL devices, numbered as VirtualGL numbers them (=> the one vglrun -d is given):"]
    for device in listed["devices"]:
        number = device["vgl_index"]
        name = f"egl{number}" if number is not None else "-"
        chosen = given == name or (given == "egl" and number == 0)
        mark = "=> " if chosen else "   "
        details = [
            device["uuid"] or "no UUID",
            f"CUDA device {device['cuda']}" if device["cuda"] is not None else "",
            device["drm"] or "",
            "refused by eglInitialize" if number is None else "",
        ]
        lines.append(f"  {mark}{name:<6} #{device['index']}  " + "  ".join(filter(None, details)))
    return lines


def doctor(env: Mapping[str, str], as_json: bool) -> int:
    report = diagnose(env)
    print(json.dumps(report, indent=2) if as_json else render_text(report))
    return 0 if report["chosen"] else 1
