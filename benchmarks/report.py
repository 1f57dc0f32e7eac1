"""The Markdown report: the machine, each workload's section (written by the workload, with the
tables below), the figures of ana-headless against xvfb-run, and the contenders' commands.
It reports figures and ratios only: what is good enough is for its reader to say."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from contenders import Contender
from runs import progress, tidy

from tests.leaks import KINDS


def fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def left_text(left: Mapping[str, int]) -> str:
    parts = [f"{left[kind]} {kind}" for kind in KINDS if left.get(kind)]
    return ", ".join(parts) or "0"


def runs_text(count: int) -> str:
    return f"{count} run{'' if count == 1 else 's'} each, a fresh process per run"


def timing_table(
    results: Mapping[str, Any],
    runners: Sequence[Contender],
    scale: float,
    digits: int,
    *,
    rates: bool = False,
    extra: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """One row per contender (and per `extra` (label, key) row): median, min and max seconds
    times `scale` (or, with `rates`, snapshots per second), the ratio to xvfb-run, failures
    and what was left behind."""
    metric = "snapshots_per_s" if rates else "seconds"
    head = (
        "| contender | median | min | max | ratio to xvfb-run | "
        + ("wall s (median) | " if rates else "")
        + "failures | left behind |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    rows = [(c.label, c.key, c.missing) for c in runners] + [
        (label, key, "") for label, key in extra
    ]
    for label, key, missing in rows:
        result = results.get(key)
        if result is None:
            lines.append(f"| {label} | {missing or 'n/a'} |" + " |" * (head.count("|") - 3))
            continue
        stats = result[metric]
        factor = 1.0 if rates else scale
        cells = [fmt(stats and stats[name] * factor, digits) for name in ("median", "min", "max")]
        cells.append(fmt(result["ratio_to_xvfb_run"], 2))
        if rates:
            cells.append(fmt(result["seconds"] and result["seconds"]["median"], 2))
        cells += [str(result["failures"]), left_text(result["left_behind"])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def head(title: str, report: Mapping[str, Any]) -> list[str]:
    """A report's first lines, the same in every benchmark: its title, the command that made it
    and when, and the machine."""
    return [
        f"# {title}",
        "",
        f"`{report['command']}` on {report['date']}",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in report["machine"].items()),
    ]


def markdown(
    report: Mapping[str, Any], sections: Sequence[Sequence[str]], runners: Sequence[Contender]
) -> str:
    out = head("ana-headless benchmark", report)
    for section in sections:
        out += ["", *section]
    figures = [
        (workload, name, value)
        for workload, named in report["figures"].items()
        for name, value in named.items()
    ]
    if figures:
        out += [
            "",
            "## Figures",
            "",
            "Each workload's plain numbers: ana-headless's ratios to xvfb-run (of median "
            "seconds; for a rate, of snapshots per second) and the launcher overhead.",
            "",
        ]
        out += [f"- {workload}: {name}: {fmt(value, 2)}" for workload, name, value in figures]
    out += [
        "",
        "## Contenders",
        "",
        *(f"- {c.label}: `{c.shown}`" for c in runners),
        "",
        "Left behind: an Xvfb process, /tmp/.X*-lock, /tmp/.X11-unix/X* or ana-headless-* "
        "directory of the run's that is still there once the run has ended (counted; then "
        "removed when provably the run's, so that the next run starts clean).",
    ]
    return "\n".join(out) + "\n"


def publish(text: str, report: Mapping[str, Any], out: Path, stem: str) -> None:
    """The Markdown report to stdout and to OUT/STEM.md, the raw numbers to OUT/STEM.json."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(text, end="")
    progress(f"wrote {tidy(str(out / stem))}.md and {stem}.json")
