"""What is printed before the test (the k6-like header) and instead of it (`check`,
`--dry-run`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import __version__
from ..scenario.discovery import display_path
from ..scenario.options import (
    describe_scenario,
)
from .limits import plan_max_vus

if TYPE_CHECKING:
    from .prepare import Prepared


def header_lines(prepared: Prepared) -> list[str]:
    """k6-like run header. Secrets appear only as [CONFIGURED]."""
    env, plan = prepared.env, prepared.options.plan
    rows = [
        ("scenario", f"{prepared.scenario.name} ({display_path(prepared.scenario.path)})"),
        ("target", prepared.target),
        ("model", env.get("MODEL", "")),
    ]
    for key in ("API_KEY", "LOADTEST_TOKEN"):
        if env.get(key):
            rows.append((key.lower(), env.display(key)))
    if env.bool("DEBUG") or prepared.settings.http_debug:
        from ..k6compat import debug_header

        rows.append(("debug", debug_header(prepared.settings)))
    rows.append(("testid", plan.tags.get("testid", "")))
    outs = [o.description() for o in prepared.outputs]
    if prepared.summary_path is not None:
        outs.append(f"summary export ({prepared.summary_path})")
    if prepared.settings.summary_markdown:
        outs.append(f"markdown summary ({prepared.settings.summary_markdown})")
    if prepared.settings.dry_run and outs:  # nothing is written without a run
        rows.append(("output", "would write " + ", ".join(outs)))
    else:
        rows.append(("output", ", ".join(outs) or "-"))
    if prepared.settings.ray is not None:
        from .ray import describe_ray

        rows.append(("ray", describe_ray(prepared.settings, prepared.workers,
                                         dry_run=prepared.settings.dry_run)))
    elif prepared.workers > 1:
        rows.append(("workers", str(prepared.workers)))
    from ..event_loop import loop_name  # timings differ by loop (docs/platforms.md)

    rows.append(("event loop", loop_name()))
    from .._compiled import describe  # the per-event cost differs (docs/platforms.md)

    rows.append(("streaming", describe()))  # (a key no wider than the others)
    if prepared.settings.monitor and not prepared.settings.dry_run:
        from ..monitoring.stack import dashboard_url

        rows.append(("grafana", dashboard_url(plan.tags.get("testid"), env)))
    width = max(len(k) for k, _ in rows)
    lines = ["", f"  indigo-loadtest v{__version__}", ""]
    lines += [f"  {k.rjust(width)}: {v}" for k, v in rows]
    lines += ["", f"  scenarios: {scenarios_overview(prepared)}:"]
    lines += [f"  * {describe_scenario(sc)}" for sc in plan.scenarios]
    lines.append("")
    return lines


def scenarios_overview(prepared: Prepared) -> str:
    plan = prepared.options.plan
    count = len(plan.scenarios)
    noun = "scenario" if count == 1 else "scenarios"
    return f"{count} {noun}, {plan_max_vus(plan)} max VUs"


def dry_run_report(prepared: Prepared) -> str:
    plan = prepared.options.plan
    n = len(prepared.thresholds)
    return (f"✓ {prepared.scenario.name}: scenario imports; {len(plan.scenarios)} "
            f"scenario(s) and {n} threshold(s) valid; no traffic sent")
