"""The team's targets for the site, each met or not, with its numbers."""

from __future__ import annotations

from report.text import (
    LOWEST_RATE,
    Results,
    capacity,
    capacity_text,
    client_bound,
    ms,
    rate_text,
    ratio,
    ratio_text,
    scenario,
    steps_at,
    tutorial_rate,
    verdict,
)

FOCUS_ROOMS = (100, 1000)  # the rooms the team's targets are set for


def targets_section(results: Results) -> list[str]:
    """The team's targets, each met or not, with its numbers."""
    lines = [
        "### Targets",
        "",
        "As set for the site: rooms of 100 and 1,000, 2 workers. A capacity below the"
        " lowest rate tried (not even one message at a time reached every member within"
        " the limit) bounds a ratio from one side; n/a where that leaves it open.",
        "",
    ]
    rooms = FOCUS_ROOMS
    node_bound = {room: client_bound(scenario(results, "node-ws", 1, room)) for room in rooms}
    for room in rooms:
        site = capacity(results, "site", 2, room)
        tutorial = capacity(results, "tutorial", 2, room)
        value = ratio(site, tutorial)
        shown = ratio_text(value)
        if site is not None and tutorial is None and scenario(results, "tutorial", 2, room):
            # Not even the lowest rate passed for the tutorial: its capacity is
            # below that rate, so the ratio is above site / lowest rate.
            value = site / LOWEST_RATE[0]
            shown = f"> {ratio_text(value)}"
        lines.append(
            f"- Room of {room}, 2 workers: site ≥ 8x tutorial: {verdict(None if value is None else value >= 8)}"  # noqa: E501
            f" ({capacity_text(results, 'site', 2, room)} /"
            f" {capacity_text(results, 'tutorial', 2, room)} = {shown})."
        )
    for room in rooms:
        site = capacity(results, "site", 2, room)
        node = capacity(results, "node-ws", 1, room)
        value = ratio(site, node)
        note = " (node-ws client-bound: its capacity is a lower bound)" if node_bound[room] else ""
        lines.append(
            f"- Room of {room}, 2 workers: site ≥ 0.5x node-ws: {verdict(None if value is None else value >= 0.5)}"  # noqa: E501
            f" ({rate_text(site)} / {rate_text(node, node_bound[room])} = {ratio_text(value)}){note}."  # noqa: E501
        )
    for room in rooms:
        value = ratio(capacity(results, "site", 2, room), capacity(results, "site", 1, room))
        lines.append(
            f"- Room of {room}: site 2 workers ≥ 1.6x 1 worker: {verdict(None if value is None else value >= 1.6)}"  # noqa: E501
            f" ({ratio_text(value)})."
        )
    for room in rooms:
        tutorial_item = scenario(results, "tutorial", 2, room)
        site_item = scenario(results, "site", 2, room)
        ok: bool | None = None
        detail = "not measured"
        if tutorial_item and site_item:
            rate = tutorial_rate(tutorial_item)
            tutorial_step = steps_at(tutorial_item, rate)
            site_step = site_item["at_tutorial_capacity"]
            if tutorial_step and site_step and tutorial_step["p99_ms"] is not None:
                site_p99 = site_step["p99_ms"]
                ok = (
                    site_p99 is not None
                    and site_step["late_or_lost"] == 0
                    and site_p99 <= tutorial_step["p99_ms"] / 2
                )
                detail = (
                    f"at {rate_text(rate)}/s: site p99 {ms(site_p99)} ms"
                    f" (late or lost {site_step['late_or_lost']}), tutorial p99"
                    f" {ms(tutorial_step['p99_ms'])} ms"
                )
        lines.append(
            f"- Room of {room}, 2 workers: site p99 ≤ half the tutorial's at the tutorial's"
            f" capacity: {verdict(ok)} ({detail})."
        )
    memory = {entry["target"]: entry["per_socket"] for entry in results["memory"]}
    for count in ("1000", "5000"):
        site = memory.get("site", {}).get(count, {}).get("bytes_per_socket")
        tutorial = memory.get("tutorial", {}).get(count, {}).get("bytes_per_socket")
        ok = None if site is None or tutorial is None else site <= tutorial
        lines.append(
            f"- Idle memory per socket at {int(count):,} sockets ≤ the tutorial's:"
            f" {verdict(ok)} (site {0 if site is None else site / 1024:.1f} KiB, tutorial"
            f" {0 if tutorial is None else tutorial / 1024:.1f} KiB)."
        )
    lines += [
        "",
        "Where a target is not met, [`bench/PROFILE.md`](../../PROFILE.md) has the profile"
        " of what stands in the way, and how to take it again (`bench/probe.py`).",
    ]
    return [*lines, ""]
