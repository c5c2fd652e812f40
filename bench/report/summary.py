"""The summary of the rooms scenarios: capacity, latency, memory and the reconnect storm,
the history API, and what the client and the workers' logs say of the run."""

from __future__ import annotations

from report.text import (
    LOWEST_RATE,
    TARGETS,
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
)
from report.verdicts import targets_section


def summary(results: Results) -> list[str]:
    rooms = results["settings"]["room_sizes"]
    lines = [
        "## Summary",
        "",
        "### Capacity (messages/s offered into the room; deliveries/s = that x room size)",
        "",
        "| room | workers | node-ws | tutorial | site | site / tutorial | site / node-ws |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    node_bound = {room: client_bound(scenario(results, "node-ws", 1, room)) for room in rooms}
    for room in rooms:
        for workers in (1, 2):
            node = capacity(results, "node-ws", 1, room)
            tutorial = capacity(results, "tutorial", workers, room)
            site = capacity(results, "site", workers, room)
            node_cell = (
                capacity_text(results, "node-ws", 1, room, node_bound[room])
                if workers == 1
                else "(1 process)"
            )
            site_tutorial_text = ratio_text(ratio(site, tutorial))
            if (
                site is not None
                and tutorial is None
                and scenario(results, "tutorial", workers, room)
            ):
                site_tutorial_text = f"> {ratio_text(site / LOWEST_RATE[0])}"
            site_node = ratio(site, node)
            site_node_text = ratio_text(site_node)
            if site_node is not None and node_bound[room]:
                site_node_text = f"≤ {site_node_text}"
            lines.append(
                f"| {room} | {workers} | {node_cell} |"
                f" {capacity_text(results, 'tutorial', workers, room)} |"
                f" {capacity_text(results, 'site', workers, room)} |"
                f" {site_tutorial_text} | {site_node_text} |"
            )
    lines += [
        "",
        "node-ws is one process (the tutorial server has no way to broadcast across"
        " processes): both worker rows compare with it. A capacity below the lowest rate"
        " means one message alone took longer than the limit to reach every member. A"
        " node-ws figure marked ≥ was limited"
        " by the client, not the server (the client used more CPU than node at the first"
        " failing step): node's real capacity is higher, and the site/node-ws ratio lower.",
        "",
        "### Two workers against one",
        "",
        "| room | tutorial 2w / 1w | site 2w / 1w |",
        "|---:|---:|---:|",
    ]
    for room in rooms:
        lines.append(
            f"| {room} |"
            f" {ratio_text(ratio(capacity(results, 'tutorial', 2, room), capacity(results, 'tutorial', 1, room)))} |"  # noqa: E501
            f" {ratio_text(ratio(capacity(results, 'site', 2, room), capacity(results, 'site', 1, room)))} |"  # noqa: E501
        )
    lines += ["", *targets_section(results)]
    lines += [
        "### Latency at the tutorial's capacity",
        "",
        "Where the tutorial has no capacity, at the lowest rate (one message at a time).",
        "",
        "| room | workers | rate/s | tutorial p99 ms | site p50 ms | site p99 ms"
        " | site lost (see Method) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for room in rooms:
        for workers in (1, 2):
            tutorial_item = scenario(results, "tutorial", workers, room)
            site_item = scenario(results, "site", workers, room)
            if not tutorial_item or not site_item:
                continue
            rate = tutorial_rate(tutorial_item)
            tutorial_step = steps_at(tutorial_item, rate)
            site_step = site_item["at_tutorial_capacity"]
            if site_step is None:
                continue
            lines.append(
                f"| {room} | {workers} | {rate_text(rate)} |"
                f" {ms(tutorial_step['p99_ms'] if tutorial_step else None)} |"
                f" {ms(site_step['p50_ms'])} | {ms(site_step['p99_ms'])} |"
                f" {site_step['late_or_lost']} |"
            )
    lines += [
        "",
        "### At half of capacity",
        "",
        "| room | workers | target | rate/s | p50 ms | p99 ms | max ms | server CPU µs/delivery |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for room in rooms:
        for workers in (1, 2):
            for target in TARGETS:
                item = scenario(results, target, workers, room)
                if not item or not item["half"]:
                    continue
                half = item["half"]
                cpu = half["server_cpu_us_per_delivery"]
                lines.append(
                    f"| {room} | {workers} | {target} | {rate_text(half['offered_rate'])} |"
                    f" {ms(half['p50_ms'])} | {ms(half['p99_ms'])} | {ms(half['max_ms'])} |"
                    f" {'-' if cpu is None else f'{cpu:.0f}'} |"
                )
    lines += [
        "",
        "### Idle memory and reconnect storm",
        "",
        "| target | workers | KiB per idle socket at 1,000 | at 5,000 | storm: handshakes/s"
        " | storm: p99 ms | refused at once | all back after s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in results["memory"]:
        per = entry["per_socket"]
        storm = entry.get("storm") or {}
        rate = storm.get("handshakes_per_s", 0)
        rate_cell = f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"
        back = storm.get("all_back_seconds")
        lines.append(
            f"| {entry['target']} | {entry.get('workers', 1)} |"
            f" {per.get('1000', {}).get('bytes_per_socket', 0) / 1024:.1f} |"
            f" {per.get('5000', {}).get('bytes_per_socket', 0) / 1024:.1f} |"
            f" {rate_cell} | {ms(storm.get('p99_ms'))} | {storm.get('failed', '-')} |"
            f" {'-' if back is None else f'{back:.1f}'} |"
        )
    lines += [
        "",
        "Memory: the workers' RSS summed, before and after opening the sockets (the 4,000"
        " beyond the first 1,000 idle in a room of their own). Storm: the first 1,000 close"
        " and reconnect at the same moment; handshakes/s counts those accepted at the first"
        " try, over the time until the last of them was ready; refused clients try again"
        " (as many at a time as the setup opens) until all are back.",
    ]
    history = results.get("history")
    if history:
        lines += [
            "",
            f"### History API on a room of {history['messages']:,} messages (one worker)",
            "",
            "| page | request | p50 ms | p99 ms | max ms |",
            "|---|---|---:|---:|---:|",
        ]
        for name in ("newest", "middle", "deep"):
            page = history[name]
            lines.append(
                f"| {name} | `{page['path']}` | {ms(page['p50_ms'])} | {ms(page['p99_ms'])} |"
                f" {ms(page['max_ms'])} |"
            )
        lines += [
            "",
            f"The messages were loaded with COPY in {history['load_seconds']:.1f} s;"
            f" {results['settings']['history_requests']} sequential requests per page.",
        ]
    lines += ["", *client_notes(results), "", *log_notes(results), ""]
    return lines


def log_notes(results: Results) -> list[str]:
    """What the workers logged at WARNING and above over the whole run, most frequent first."""
    lines = [
        "### Server logs",
        "",
        "WARNING and ERROR lines in the workers' logs over the whole run (numbers replaced"
        " by N), and sockets refused while opening (each retried until it opened):",
        "",
    ]
    for target in TARGETS:
        counts = results.get("log_warnings", {}).get(target, {})
        refused = sum(
            item.get("open_refused", 0) for item in results["scenarios"] if item["target"] == target
        )
        refused += sum(
            entry.get("open_refused", 0) for entry in results["memory"] if entry["target"] == target
        )
        top = sorted(counts.items(), key=lambda item: -item[1])[:6]
        lines.append(
            f"- **{target}**: {sum(counts.values())} lines; {refused} handshakes"
            " refused and retried during setup."
        )
        for message, count in top:
            lines.append(f"  - {count} x `{message.replace('`', '')}`")
    if results.get("hurried"):
        lines += [
            "",
            "Running late, these searches bisected once instead of"
            f" {results['settings']['bisections']} times: {', '.join(results['hurried'])}.",
        ]
    return lines


def client_notes(results: Results) -> list[str]:
    """What the client cost, and the best it reached: evidence it did not set the pace."""
    best: dict[str, float] = {}
    for item in results["scenarios"]:
        for step in item["steps"]:
            if step["passed"]:
                target = item["target"]
                best[target] = max(best.get(target, 0.0), step["delivered_per_s"])
    site_steps = [
        step
        for item in results["scenarios"]
        if item["target"] == "site"
        for step in item["steps"]
        if step["passed"]
    ]
    worst_client = max((step["client_cpu_cores"] for step in site_steps), default=0.0)
    processes = results["settings"]["client_processes"]
    busy = results["machine_cpu_cores_mean"]
    return [
        "### The client",
        "",
        f"The client ran as {processes} processes. The most deliveries per second it"
        " took in within a passing step: "
        + ", ".join(f"{target} {best[target]:,.0f}" for target in TARGETS if target in best)
        + f". In the site's passing steps it used at most {worst_client:.2f} cores (of"
        f" {processes} processes): the site's capacity is set by the server, while node-ws"
        " figures marked ≥ are the client's ceiling. With 2 workers on 2 cores the client,"
        " Redis and PostgreSQL compete with the workers for CPU (each step's CPU split is in"
        " the raw numbers), most of all in rooms of 1,000 where the client receives 1,000"
        " frames per message.",
        "",
        f"Machine load: the whole machine averaged {busy:.2f} busy cores over the run;"
        f" load average {' '.join(results['loadavg_start'])} at the start and"
        f" {' '.join(results['loadavg_end'])} at the end. Anything else running on the"
        " machine shows in each step's `rest` CPU column together with Redis and PostgreSQL.",
    ]
