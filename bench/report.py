"""The dated results document: README.md (summary, method, raw numbers) and its plots.

    report.write(results, Path("bench/results/<date>"))

Reads only the results dictionary that run.py also saves as results.json, so
a report can be rewritten from a saved run (`run.py --report-only`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

TARGETS = ("node-ws", "tutorial", "site")
COLOURS = {"node-ws": "#4c72b0", "tutorial": "#dd8452", "site": "#55a868"}
FOCUS_ROOMS = (100, 1000)  # the rooms the team's targets are set for

Results = dict[str, Any]


def scenario(results: Results, target: str, workers: int, room: int) -> dict[str, Any] | None:
    for item in results["scenarios"]:
        if (item["target"], item["workers"], item["room_size"]) == (target, workers, room):
            return item  # type: ignore[no-any-return]
    return None


def capacity(results: Results, target: str, workers: int, room: int) -> float | None:
    item = scenario(results, target, workers, room)
    return item["capacity"] if item else None


def client_bound(item: dict[str, Any] | None) -> bool:
    """Whether the first failing step used more client CPU than server CPU.

    Then the client, not the server, may be what failed: the capacity is a
    lower bound for the server.
    """
    if item is None:
        return False
    failed = [step for step in item["steps"] if not step["passed"]]
    if not failed:
        return True  # never failed within the steps allowed
    step = min(failed, key=lambda s: s["offered_rate"])
    return bool(step["client_cpu_cores"] > step["server_cpu_cores"])


# The lowest rate a search tries; a capacity of None is below it (set by write()).
LOWEST_RATE = [0.25]


def rate_text(value: float | None, bound: bool = False) -> str:
    """A rate for the tables; None is a search in which not even the lowest rate passed."""
    if value is None:
        return f"< {LOWEST_RATE[0]:g}"
    text = f"{value:,.0f}" if value >= 10 else f"{value:g}"
    return f"≥ {text}" if bound else text


def capacity_text(
    results: Results, target: str, workers: int, room: int, bound: bool = False
) -> str:
    """A capacity; below the lowest rate, with the p99 that rate had."""
    item = scenario(results, target, workers, room)
    if item is None:
        return "-"
    if item["capacity"] is None and item["steps"]:
        lowest = min(item["steps"], key=lambda step: step["offered_rate"])
        return f"{rate_text(None)} (p99 {ms(lowest['p99_ms'])} ms at {lowest['offered_rate']:g}/s)"
    return rate_text(item["capacity"], bound)


def ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


def ratio_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.3f}x"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "**met**" if ok else "**not met**"


def tutorial_rate(item: dict[str, Any]) -> float:
    """The rate the site is compared at: the tutorial's capacity, or (below the
    lowest rate) that rate, one message at a time."""
    return float(item["capacity"] or LOWEST_RATE[0])


def steps_at(item: dict[str, Any], rate: float) -> dict[str, Any] | None:
    """The search step at exactly `rate`: the passing one that set the capacity or,
    for a search in which none passed, the step at the lowest rate."""
    for step in item["steps"]:
        if step["offered_rate"] == rate and (step["passed"] or item["capacity"] is None):
            return step  # type: ignore[no-any-return]
    return None


# --- the document ----------------------------------------------------------------


def write(results: Results, out: Path) -> None:
    """Write README.md and the PNG plots into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    LOWEST_RATE[0] = results["settings"].get("min_rate", LOWEST_RATE[0])
    if results["scenarios"]:
        plot_capacity(results, out / "capacity.png")
        plot_latency(results, out / "latency.png")
    if results.get("broadcast"):
        plot_audience(results, out / "audience.png")
    if results.get("shards"):
        plot_shards(results, out / "shards.png")
    lines: list[str] = []
    lines += title(results)
    lines += small_rooms(results)
    lines += audience(results)
    lines += shards_section(results)
    lines += notes_section(results)
    lines += search_section(results)
    if results["scenarios"]:
        lines += summary(results)
    lines += method(results)
    lines += raw(results)
    (out / "README.md").write_text("\n".join(lines) + "\n")


def small_rooms(results: Results) -> list[str]:
    """Many small rooms, all chatting at once: total messages/s at p99 within the limit."""
    entries = results.get("small_rooms") or []
    if not entries:
        return []
    first = entries[0]
    settings = results["settings"]
    lines = [
        f"## Many small rooms: {first['rooms']} rooms of {first['room_size']}",
        "",
        f"{first['rooms'] * first['room_size']:,} sockets in {first['rooms']} rooms of"
        f" {first['room_size']}, one sender in each room, every room chatting at once; the"
        " rate is the total over all rooms (on the site, every message stored, in"
        f" {'SQLite' if settings.get('site_database') == 'sqlite' else 'PostgreSQL'})."
        " Capacity: the highest total rate with"
        f" every member getting every message of its room and p99 ≤"
        f" {settings['p99_limit_ms']:.0f} ms.",
        "",
        "| target | workers | capacity, messages/s in all | p99 ms there"
        " | server CPU µs per message there |",
        "|---|---:|---:|---:|---:|",
    ]
    for entry in entries:
        at = next(
            (s for s in entry["steps"] if s["passed"] and s["offered_rate"] == entry["capacity"]),
            None,
        )
        cpu = at["server_cpu_us_per_delivery"] if at else None
        per_message = "-" if cpu is None else f"{cpu * entry['room_size']:,.0f}"
        lines.append(
            f"| {entry['target']} | {entry['workers']} |"
            f" {rate_text(entry['capacity']) if entry['capacity'] else 'none'} |"
            f" {ms(at['p99_ms']) if at else '-'} |"
            f" {per_message} |"
        )
    by_target = {entry["target"]: entry for entry in entries}
    site, tutorial = by_target.get("site"), by_target.get("tutorial")
    if site is not None and tutorial is not None:
        share = ratio(site["capacity"], tutorial["capacity"])
        lines += ["", f"- Site over the tutorial, same load: {ratio_text(share)}."]
    return [*lines, ""]


def audience(results: Results) -> list[str]:
    """The broadcast scenario: one room, thousands watching, on the most workers."""
    entries = results.get("broadcast") or []
    if not entries:
        return []
    first = entries[0]
    lines = [
        f"## An audience: {first['viewers']:,} sockets in one room",
        "",
        f"{first['senders']} senders publish into one room of {first['viewers']:,} sockets"
        " (every socket gets every message, the senders' own included). On the site the room"
        " is a broadcast room open to viewers: the senders post as staff, the audience watches"
        " without signing in, and each worker sends a socket one `messages` frame per tick"
        f" ({results['settings'].get('batch_tick_ms', 50)} ms) carrying that tick's messages."
        " The tutorial and node-ws send every message to every socket on its own."
        " Delivered messages/s counts each message each socket received once; each rate"
        f" is held for {results['settings'].get('broadcast_step_seconds', 2)} s.",
        "",
        "| target | workers | rate/s | delivered msgs/s | p50 ms | p99 ms | late or lost"
        " | server CPU µs/delivered msg | server cores | client cores | p99 ≤ limit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for entry in entries:
        for step in entry["steps"]:
            cpu = step["server_cpu_us_per_delivery"]
            lines.append(
                f"| {entry['target']} | {entry['workers']} | {rate_text(step['offered_rate'])} |"
                f" {step['delivered_per_s']:,.0f} | {ms(step['p50_ms'])} | {ms(step['p99_ms'])} |"
                f" {step['late_or_lost']:,} | {'-' if cpu is None else f'{cpu:.1f}'} |"
                f" {step['server_cpu_cores']:.2f} | {step['client_cpu_cores']:.2f} |"
                f" {verdict(step['passed'])} |"
            )
    lines += [
        "",
        "| target | memory per viewer (RSS of the workers, idle) |",
        "|---|---:|",
        *(
            f"| {entry['target']} | {entry['bytes_per_viewer'] / 1024:.1f} KiB |"
            for entry in entries
        ),
        "",
    ]
    by_target = {entry["target"]: entry for entry in entries}
    site, node = by_target.get("site"), by_target.get("node-ws")
    if site is not None:
        top = max(site["steps"], key=lambda step: step["offered_rate"])
        limit = results["settings"]["p99_limit_ms"]
        lines.append(
            f"- Site, {rate_text(top['offered_rate'])} messages/s to {site['viewers']:,}"
            f" viewers ({top['offered_rate'] * site['viewers']:,.0f} deliveries/s offered) with"
            f" p99 ≤ {limit:.0f} ms and nothing lost: {verdict(top['passed'])}"
            f" (delivered {top['delivered_per_s']:,.0f}/s, p99 {ms(top['p99_ms'])} ms)."
        )
        if node is not None:
            node_top = max(node["steps"], key=lambda step: step["offered_rate"])
            share = ratio(top["delivered_per_s"], node_top["delivered_per_s"])
            lines.append(
                "- Site ≥ 0.5x node-ws's delivered messages/s under the same load:"
                f" {verdict(share is not None and share >= 0.5)}"
                f" ({ratio_text(share)}; node-ws {node_top['delivered_per_s']:,.0f}/s on one"
                " process)."
            )
    return [*lines, "", "![Delivered messages per second by offered rate](audience.png)", ""]


def shard_deviations(entry: dict[str, Any]) -> tuple[float, float]:
    """The most and the fewest commands of a shard, against the shards' mean (+0.05 is 5%
    above it)."""
    calls = [shard["calls"] for shard in entry["per_shard"]]
    mean = sum(calls) / len(calls)
    return max(calls) / mean - 1, min(calls) / mean - 1


def percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


def shards_section(results: Results) -> list[str]:
    """The site on several Redis shards against the site on one: balance and capacity."""
    entries = results.get("shards") or []
    if not entries:
        return []
    settings = results["settings"]
    one = next((entry for entry in entries if entry["shards"] == 1), None)
    many = next((entry for entry in entries if entry["shards"] > 1), None)
    first = entries[0]
    count = many["shards"] if many else settings["shards"]
    counted = first["counted"]
    lines = [
        f"## Redis shards: {count} against 1",
        "",
        f"The site on {count} Redis shards against the site on one, in the same run, each on"
        " Redis servers of the run's own (empty, no persistence) with a database of its own:"
        f" {first['rooms']:,} rooms of {first['room_size']} sockets"
        f" ({first['rooms'] * first['room_size']:,} sockets, each its own user), one sender in"
        f" each room, every room chatting, on {first['workers']} workers both times"
        " (every worker keeps a queue on every shard). Capacity: the"
        " highest total rate with every member getting every message of its room and p99 ≤"
        f" {settings['p99_limit_ms']:.0f} ms. Commands: every shard's `INFO commandstats`"
        " (calls, the commands Lua scripts run included) after one step at the same rate for"
        f" both, {rate_text(counted['offered_rate'])} messages/s (half the capacity on one"
        f" shard) for {counted['duration_s']:.1f} s (every room sending"
        f" {counted['sent'] / first['rooms']:g} messages), with `CONFIG RESETSTAT` before it.",
        "",
        "### Targets",
        "",
    ]
    if many is not None:
        high, low = shard_deviations(many)
        calls = [shard["calls"] for shard in many["per_shard"]]
        balance = settings["shard_balance"]
        lines.append(
            f"- Each shard's Redis commands within ±{balance * 100:.0f}% of the shards' mean,"
            f" over the {many['rooms']:,} rooms: {verdict(max(high, -low) <= balance)} (the"
            f" most {percent(high)}, the fewest {percent(low)}; {min(calls):,} to"
            f" {max(calls):,} calls in the step)."
        )
    if one is not None and many is not None:
        value = ratio(many["capacity"], one["capacity"])
        lines.append(
            f"- Capacity with {count} shards ≥ capacity with 1:"
            f" {verdict(None if value is None else value >= 1)} ({rate_text(many['capacity'])}"
            f" / {rate_text(one['capacity'])} messages/s = {ratio_text(value)})."
        )
    cpu_text = "; ".join(
        f"{entry['shards']} shard{'s' if entry['shards'] > 1 else ''}: "
        + " + ".join(f"{shard['cpu_seconds']:.2f}" for shard in entry["per_shard"])
        + (
            f" = {sum(shard['cpu_seconds'] for shard in entry['per_shard']):.2f} s"
            if entry["shards"] > 1
            else " s"
        )
        for entry in entries
    )
    if one is not None and many is not None:
        # Per second: the two windows differ by a fraction of a second.
        rates = {
            entry["shards"]: sum(shard["calls"] for shard in entry["per_shard"])
            / entry["counted_window_s"]
            for entry in (one, many)
        }
        lines.append(
            f"- Commands in all, per second of the step: {rates[1]:,.0f} on 1 shard,"
            f" {rates[count]:,.0f} on {count} ({ratio_text(ratio(rates[count], rates[1]))})."
        )
    lines += [
        f"- Redis CPU in that step (`INFO cpu`, user + system): {cpu_text}.",
        "",
        "| Redis | capacity, messages/s in all | p99 ms there"
        " | workers' CPU µs per message there |",
        "|---|---:|---:|---:|",
    ]
    for entry in entries:
        at = next(
            (s for s in entry["steps"] if s["passed"] and s["offered_rate"] == entry["capacity"]),
            None,
        )
        cpu = at["server_cpu_us_per_delivery"] if at else None
        per_message = "-" if cpu is None else f"{cpu * entry['room_size']:,.0f}"
        lines.append(
            f"| {entry['shards']} shard{'s' if entry['shards'] > 1 else ''} |"
            f" {rate_text(entry['capacity'])} | {ms(at['p99_ms']) if at else '-'} |"
            f" {per_message} |"
        )
    lines += [
        "",
        "A search takes one step per rate, and a step fails on any p99 over the limit: one"
        " stall of the workers or the database fails it. The same load held longer compares"
        f" the two more steadily: {rate_text(counted['offered_rate'])} messages/s for"
        f" {counted['duration_s']:.1f} s, the step whose commands are counted.",
        "",
        "| Redis | p50 ms | p99 ms | max ms | late or lost | workers' CPU, cores"
        " | workers' CPU µs per message | Redis CPU µs per message |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in entries:
        step = entry["counted"]
        cpu = step["server_cpu_us_per_delivery"]
        per_message = "-" if cpu is None else f"{cpu * entry['room_size']:,.0f}"
        redis_cpu = sum(shard["cpu_seconds"] for shard in entry["per_shard"])
        lines.append(
            f"| {entry['shards']} shard{'s' if entry['shards'] > 1 else ''} |"
            f" {ms(step['p50_ms'])} | {ms(step['p99_ms'])} | {ms(step['max_ms'])} |"
            f" {step['late_or_lost']:,} | {step['server_cpu_cores']:.2f} | {per_message} |"
            f" {redis_cpu / step['sent'] * 1e6:,.0f} |"
        )
    lines += [
        "",
        f"### Each shard's work at {rate_text(counted['offered_rate'])} messages/s",
        "",
        "Rooms and users: the groups `room-<pk>` and `user-<pk>` found on the shard after the"
        " step (every key of a room lives with its group, every key of a user with its"
        " group). Commands per second over the step and its drain.",
        "",
        "| Redis | shard | rooms | users | commands | commands/s"
        " | against the mean | Redis CPU s | of a core |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in entries:
        calls = [shard["calls"] for shard in entry["per_shard"]]
        mean = sum(calls) / len(calls)
        window = entry["counted_window_s"]
        for shard in entry["per_shard"]:
            keys = shard["keys"]
            against = percent(shard["calls"] / mean - 1) if entry["shards"] > 1 else "-"
            lines.append(
                f"| {entry['shards']} shard{'s' if entry['shards'] > 1 else ''} |"
                f" {shard['shard']} | {keys.get('group:room', 0):,} |"
                f" {keys.get('group:user', 0):,} | {shard['calls']:,} |"
                f" {shard['calls'] / window:,.0f} | {against} |"
                f" {shard['cpu_seconds']:.2f} | {shard['cpu_seconds'] / window * 100:.1f}% |"
            )
    lines += [
        "",
        "By command (calls in the step):",
        "",
        "| command | "
        + " | ".join(
            f"{entry['shards']} shard{'s' if entry['shards'] > 1 else ''}: {shard['shard']}"
            for entry in entries
            for shard in entry["per_shard"]
        )
        + " | "
        + " | ".join(f"{entry['shards']}: in all" for entry in entries if entry["shards"] > 1)
        + " |",
        "|---|"
        + "---:|" * sum(len(entry["per_shard"]) + (entry["shards"] > 1) for entry in entries),
    ]
    commands: dict[str, int] = {}
    for entry in entries:
        for shard in entry["per_shard"]:
            for name, calls in shard["by_command"].items():
                commands[name] = commands.get(name, 0) + calls
    for name in sorted(commands, key=lambda name: -commands[name]):
        cells = []
        for entry in entries:
            values = [shard["by_command"].get(name, 0) for shard in entry["per_shard"]]
            cells += [f"{value:,}" for value in values]
            if entry["shards"] > 1:
                cells.append(f"{sum(values):,}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        "What sends them (chat/platform/redis/, chat/platform/layers.py): `evalsha` runs the group send's"
        " script (once per message, on the room's shard: it reads the group and queues the"
        " message for each member worker there) and the presence sweep (each worker, each"
        " room due, every heartbeat of 10 s, on the room's shard); the commands those"
        " scripts run count as well. `zadd` and `expire` outside scripts are the presence"
        " refresh (each socket, every heartbeat, on its room's shard); `bzmpop` is each"
        " worker's reader of its queue on each shard; `set`, `get` and `info` are the"
        " epoch watch (each worker, every shard, every 2 s); the registry of live workers"
        " is on one shard. People's rate limit is counted by the database, not Redis.",
        "",
        "![Commands per shard, and p99 against rate](shards.png)",
        "",
    ]
    return lines


def title(results: Results) -> list[str]:
    day = results["started"][:10]
    machine = results["machine"]
    unfinished = (
        [
            f"**This run did not finish** ({results['error']}): what follows is what it"
            " measured before it stopped.",
            "",
        ]
        if results.get("error")
        else []
    )
    settings = results["settings"]
    ran = settings.get("scenarios_run")
    measured = settings.get("targets_run")
    if ran is not None and measured is not None and ("rooms" not in ran or len(measured) < 3):
        # Some scenarios, some targets: say which, not what a whole run compares.
        what = (
            f"`bench/run.py --only {' '.join(ran)} --targets {' '.join(measured)}`,"
            f" {results['duration_s'] / 60:.1f} minutes on {machine['cores']} cores"
            f" ({machine['cpu']}): these scenarios and targets alone, each with its baseline"
            " in the same run."
        )
    else:
        what = (
            f"`make bench`, {results['duration_s'] / 60:.1f} minutes on {machine['cores']} cores"
            f" ({machine['cpu']}), the site measured against the Channels tutorial's chat and a"
            " Node `ws` broadcast server in the same run."
        )
    return [
        f"# Fan-out benchmark, {day}",
        "",
        f"{what} Capacity is the highest rate of messages sent into one room (or in all, where"
        f" many rooms chat) at which every member got every message with p99 ≤"
        f" {settings['p99_limit_ms']:.0f} ms.",
        "",
        *unfinished,
    ]


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


def notes_section(results: Results) -> list[str]:
    """Shared notes: editors typing into one document, each keystroke's arrival at the others."""
    entry = results.get("notes")
    if not entry:
        return []
    target = entry["target_rate_per_editor"]
    at_target = next((step for step in entry["steps"] if step["rate_per_editor"] == target), None)
    equal = entry.get("all_equal_to_database")
    lines = [
        f"## Shared notes: {entry['editors']} editors in one document",
        "",
        f"{entry['editors']} editors (`bench/notes.py`: pycrdt clients speaking the notes socket's"
        f" y-protocols, each a user of its own) typing into one room's notes over"
        f" {entry['workers']} workers, each at the end of a line of its own, every key one"
        " update message; the time from a key's due moment to its arrival at every other"
        " editor.",
        "",
        f"- Each keystroke reaches every other editor with p99 ≤ {entry['p99_target_ms']:.0f} ms"
        f" at {target:g} keys/s per editor:"
        f" {verdict(bool(entry.get('passed')))}"
        + (
            f" (p99 {ms(at_target['p99_ms'])} ms, {at_target['missing']} not delivered)"
            if at_target
            else ""
        ),
        f"- Every editor ends with the text the database holds: {verdict(equal)}"
        f" ({entry.get('stored_chars', 0):,} characters; differing:"
        f" {entry.get('editors_differing_from_database') or 'none'}).",
        "",
        "| keys/s per editor | keys/s in all | deliveries/s | p50 ms | p90 ms | p99 ms"
        " | max ms | not delivered | errors | workers' CPU | client CPU | machine CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for step in entry["steps"]:
        lines.append(
            f"| {step['rate_per_editor']:g}{'' if step.get('passed', True) else ' (missed)'}"
            f" | {step['keys_per_s']:g}"
            f" | {step['deliveries_per_s']:,.0f} | {ms(step['p50_ms'])} | {ms(step['p90_ms'])}"
            f" | {ms(step['p99_ms'])} | {ms(step['max_ms'])} | {step['missing']}"
            f" | {step['errors']} | {step['server_cpu_cores']:.2f}"
            f" | {step.get('client_cpu_cores', 0):.2f} | {step['machine_cpu_cores']:.2f} |"
        )
    warnings = entry.get("log_warnings") or {}
    lines += [
        "",
        f"Method: {entry['client_processes']} client processes, {entry['step_seconds']:g} s"
        f" steps, each editor's keys evenly spaced and the editors spread over the interval;"
        f" the editors synced in {entry.get('open_seconds', 0):.1f} s before the first step;"
        " the climb stops at the first step at or past the target rate that misses the p99"
        " (CPU in cores)."
        " A key is named by its Yjs id (client, clock) read from the update's head; one"
        " machine's monotonic clock. The workers' CPU includes storing every update"
        " (one INSERT per key) before it is relayed.",
        "",
        "Workers' log warnings: "
        + ("; ".join(f"{count} x {text}" for text, count in warnings.items()) or "none")
        + ".",
        "",
    ]
    return lines


def search_section(results: Results) -> list[str]:
    """Search on a million messages, from bench/search.py's results (its own README beside)."""
    found = results.get("search")
    if not found:
        return []
    kinds = found["kinds"]
    target = found["settings"]["p99_target_ms"]
    overall = kinds["all"]["search"]
    lines = [
        f"## Search on {found['messages']:,} messages",
        "",
        f"Every query through `chat/search/` as `GET /api/search/` runs it, and through the"
        f" naive search (`icontains`, newest first) behind the same gate: p99"
        f" {overall['p99_ms']:,.1f} ms over {overall['count']:,} queries (target ≤"
        f" {target:.0f} ms: {verdict(overall['p99_ms'] <= target)}). Method, plans and"
        f" every query: [its own report]({found['folder']}/README.md).",
        "",
        "| kind | search p50 ms | p99 | naive p50 ms | p99 |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, item in kinds.items():
        lines.append(
            f"| {kind} | {ms(item['search']['p50_ms'])} | {ms(item['search']['p99_ms'])} |"
            f" {ms(item['naive']['p50_ms'])} | {ms(item['naive']['p99_ms'])} |"
        )
    return [*lines, ""]


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


def method(results: Results) -> list[str]:
    settings = results["settings"]
    machine = results["machine"]
    versions = results.get("versions", {})
    version_text = ", ".join(f"{name} {value}" for name, value in versions.items())
    nice = settings.get("nice", 0)
    database = {"postgres": "PostgreSQL", "sqlite": "SQLite"}[
        settings.get("site_database", "postgres")
    ]
    ran = set(settings.get("scenarios_run") or ["rooms", "history"])
    measured = set(settings.get("targets_run") or TARGETS)
    lines = [
        "## Method",
        "",
        f"- Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB"
        f" RAM, Linux {machine['kernel']}. Server, client, Redis and PostgreSQL all on it."
        f" The bench's own processes (client and workers) ran at nice {nice}, ahead of"
        " anything else on the machine; Redis and PostgreSQL at their own priority.",
        f"- Versions: {version_text}.",
        "- Targets:",
        "  - **site**: `python -m chat.platform.server $(cat deploy/daphne.args)` per worker, each on"
        f" its own port, a fresh {database} database migrated for the run, the shared Redis"
        " with a layer prefix of its own. Real path: `?token=` from `POST /api/token/`,"
        f" `message.send` with a `client_id` (as the page sends), stored in {database}, then"
        " broadcast; presence, the epoch watcher and the rate limiter all run."
        f" Environment: `{' '.join(f'{k}={v}' for k, v in settings['site_env'].items())}`"
        f" (the limiter runs, and never refuses). Sockets belong to {settings['site_users']}"
        " users in turn; the senders are distinct users.",
        "  - **tutorial**: `bench/baselines/tutorial`, the Channels tutorial's"
        " `AsyncWebsocketConsumer` (`chat_<room>` group, `channels_redis.core."
        "RedisChannelLayer` with its defaults) under plain `daphne`. One deviation: its Redis"
        " host entry has no socket timeout, without which redis-py 8 kills every socket"
        " idle for ~10 s with 1011 (see the settings file).",
        "  - **node-ws**: `bench/baselines/node-ws`, the `ws` README's broadcast server, one"
        " process.",
        "- Wire: the site speaks `message.send`/`message` frames, the tutorial"
        ' `{"message": ...}` both ways, node-ws raw text; every body is the same JSON'
        ' (`{"k": step, "s": sender, "n": sequence, "t": due time}`). Compression is off'
        " on every socket.",
        f"- Client: `bench/loadgen.py`, {settings['client_processes']} processes of asyncio"
        " with websockets' sans-I/O protocol; socket i is in process i mod 2, on worker i"
        " mod workers. Every socket is a member and receives every message (senders"
        f" included); the first {settings['senders']} sockets send in turn (both, in rooms of"
        " 2). A message is due at t0 + m / rate; latency is receipt minus due time, so a"
        " client or server that falls behind shows as latency, not as a lower rate.",
        f"- Steps: {settings['step_seconds']} s each, then up to"
        f" {settings['drain_seconds']} s for the last messages; a step passes when every"
        f" member received every message, p99 ≤ {settings['p99_limit_ms']:.0f} ms and no"
        " socket was closed. Late or lost counts messages not received by the end of the"
        " drain; lost counts those still missing once nothing had arrived for 0.5 s (at"
        " most 15 s later): the tutorial's are dropped by channels-redis over its queue"
        " capacity (100), while a server that stalls for longer than that with a backlog"
        " may still deliver some of its `lost` later. Duplicates and reordering (a"
        " sender's message after a later one of its own) are counted per member.",
        "- Search: the first rate offers "
        + ", ".join(
            f"{rate:,.0f} deliveries/s ({label})"
            for label, rate in settings["start_deliveries_per_s"].items()
        )
        + ", or half the deliveries/s of the previous room's capacity if more; it doubles"
        " while steps pass and halves while they fail (down to"
        f" {settings['min_rate']:g}/s), then bisects (geometric mean, up to"
        f" {settings['bisections']} steps) between the last pass and the first failure; at"
        f" most {settings['max_steps']} steps. Two-worker searches start from the one-worker"
        " capacity. Steps at low rates last up to 4 s so that they hold two messages."
        " After a failing step the bench waits for the sockets to"
        " go quiet, so that a backlog does not spill into the next step.",
        "- CPU: user + system time of every worker process (/proc/<pid>/stat) around each"
        " step; per delivery = that / messages delivered. Client CPU likewise; `rest` is"
        " the machine's busy time (/proc/stat) minus both: Redis, PostgreSQL and anything"
        " else.",
        "- Memory and storm: in the room-of-1,000 scenario with the most workers (site and"
        " tutorial 2, node-ws 1), before its search; RSS of the workers before and after"
        " opening"
        f" {' and '.join(f'{n:,}' for n in settings['idle_sockets'])} idle sockets,"
        " divided by the sockets. Storm: those first"
        f" {settings['storm_clients']:,} sockets close; once the workers are idle they"
        " reconnect all at once (the site's with `after=0`; a site socket counts once its"
        " `welcome` arrived). Daphne listens with Twisted's default backlog of 50, node with"
        " 511.",
        "- History: one worker; messages loaded with COPY; sequential authenticated GETs.",
    ]
    # What this run did not measure is not described.
    skipped = [
        ("  - **tutorial**", "tutorial" not in measured),
        ("  - **node-ws**", "node-ws" not in measured),
        ("- Memory and storm", "rooms" not in ran),
        ("- History", "history" not in ran),
    ]
    lines = [
        line
        for line in lines
        if not any(line.startswith(start) and skip for start, skip in skipped)
    ]
    if results.get("shards"):
        lines.append(shards_method(results))
    if results["scenarios"]:
        lines += [
            "",
            "### Plots",
            "",
            "![capacity by room size and workers](capacity.png)",
            "",
            "![latency against offered rate](latency.png)",
        ]
    return [*lines, ""]


def shards_method(results: Results) -> str:
    """How the shards scenario ran, as one bullet of the method."""
    settings = results["settings"]
    entries = results["shards"]
    counted = entries[0]["counted"]
    return (
        "- Redis shards: for each of the two sites, its own `redis-server` processes on free"
        ' ports of 127.0.0.1 (`--save "" --appendonly no`, empty at the start, at niceness 0'
        " as the shared Redis), named by"
        " `REDIS_URL` (comma-separated), a fresh database, and"
        f" {settings['shard_workers']} workers started one after another; each places its"
        " queue when its `/healthz` is first asked (`chat.platform.workers.queue_shard_choose`), and"
        " each `/healthz` then says on which shard it is. Socket i is user i, on worker i mod"
        f" {settings['shard_workers']}, in room i div {settings['shard_room_size']}: the two"
        " sockets of a room are on two workers, and the first of them sends. The"
        f" {settings['shard_rooms'] * settings['shard_room_size']:,} tokens come from"
        " `chat.web.tokens.token_issue` in one `manage.py shell` (the token `POST /api/token/`"
        " answers with), not from the endpoint: that many password checks would take minutes."
        " The search is the others' (same first rate for both, bisecting as often), with"
        f" {settings['shard_step_seconds']:g} s steps. The counted step lasts"
        f" {counted['duration_s']:.1f} s: whole rounds of one message from every room, at"
        " least 20 s (two of the workers' heartbeats, whose presence work is much of"
        " Redis's). Its window (the step, its drain, and any wait for stragglers) is from"
        " `CONFIG RESETSTAT` to `INFO commandstats` on every shard, less the bench's own"
        " `INFO` calls, and covers the workers' background work too (presence refresh and"
        " sweeps every 10 s, the epoch watch every 2 s). Keys are counted with `SCAN` after"
        " it. The one-shard site runs first, then the sharded one, on the same machine."
    )


def raw(results: Results) -> list[str]:
    lines = [
        "## Raw numbers",
        "",
        "Every step of every search, in the order taken (all of it, and more, in"
        " `results.json`). CPU in cores (1.0 = one core busy for the whole step).",
        "",
    ]
    for item in results["scenarios"]:
        lines.append(
            f"### {item['target']}, {item['workers']} worker(s), room of {item['room_size']}:"
            f" capacity {rate_text(item['capacity'])}/s"
        )
        named = [(step, "") for step in item["steps"]]
        if item["half"]:
            named.append((item["half"], "half"))
        if item["at_tutorial_capacity"]:
            named.append((item["at_tutorial_capacity"], "tutorial's capacity"))
        lines += ["", *step_table(named), ""]
    for entry in results.get("shards") or []:
        lines.append(
            f"### site on {entry['shards']} Redis shard(s), {entry['workers']} workers,"
            f" {entry['rooms']:,} rooms of {entry['room_size']}: capacity"
            f" {rate_text(entry['capacity'])}/s in all"
        )
        named = [(step, "") for step in entry["steps"]]
        named.append((entry["counted"], "commands counted"))
        lines += ["", *step_table(named), ""]
        lines += shard_log_notes(entry)
    return lines


def step_table(named: list[tuple[dict[str, Any], str]]) -> list[str]:
    """Steps as a table, each with what it was (a search's steps have no name)."""
    lines = [
        "| rate/s | sent/s | delivered/s | p50 ms | p99 ms | max ms | late/lost | lost"
        " | dup | reord | server CPU | µs/delivery | client CPU | rest CPU | |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for step, name in named:
        cpu = step["server_cpu_us_per_delivery"]
        result = "pass" if step["passed"] else "fail"
        closes = step["unexpected_closes"]
        if closes:
            result += f" (closed: {closes})"
        if name:
            result = f"{name}: {result}"
        lines.append(
            f"| {rate_text(step['offered_rate'])} | {step['sent_rate']:,.0f} |"
            f" {step['delivered_per_s']:,.0f} | {ms(step['p50_ms'])} | {ms(step['p99_ms'])} |"
            f" {ms(step['max_ms'])} | {step['late_or_lost']} | {step['lost']} |"
            f" {step['duplicates']} | {step['reordered']} | {step['server_cpu_cores']:.2f} |"
            f" {'-' if cpu is None else f'{cpu:.0f}'} | {step['client_cpu_cores']:.2f} |"
            f" {step['rest_cpu_cores']:.2f} | {result} |"
        )
    return lines


def shard_log_notes(entry: dict[str, Any]) -> list[str]:
    """What one site of the shards scenario logged at WARNING and above."""
    counts = entry.get("log_warnings") or {}
    top = sorted(counts.items(), key=lambda item: -item[1])[:6]
    return [
        f"Workers' logs: {sum(counts.values())} WARNING or ERROR lines" + (":" if top else "."),
        *(f"- {count} x `{message.replace('`', '')}`" for message, count in top),
        "",
    ]


# --- plots -----------------------------------------------------------------------


def plot_audience(results: Results, path: Path) -> None:
    """Delivered messages/s, and p99, by offered rate, for each target's audience run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for entry in results["broadcast"]:
        rates = [step["offered_rate"] for step in entry["steps"]]
        left.plot(
            rates,
            [step["delivered_per_s"] for step in entry["steps"]],
            marker="o",
            label=entry["target"],
        )
        right.plot(
            rates,
            [step["p99_ms"] or 0 for step in entry["steps"]],
            marker="o",
            label=entry["target"],
        )
    viewers = results["broadcast"][0]["viewers"]
    left.plot(
        [r for r in (1, 10, 50)],
        [r * viewers for r in (1, 10, 50)],
        linestyle=":",
        color="grey",
        label="offered",
    )
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("messages/s published into the room")
        axis.legend()
        axis.grid(True, which="both", alpha=0.3)
    left.set_ylabel("messages delivered/s")
    right.set_ylabel("p99 latency, ms")
    right.axhline(results["settings"]["p99_limit_ms"], color="red", linestyle="--", linewidth=1)
    figure.suptitle(f"One room, {viewers:,} sockets")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_shards(results: Results, path: Path) -> None:
    """Left, each shard's commands per second in the counted step, by command; right, p99
    against the offered rate in each site's search."""
    entries = results["shards"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    bars = [
        (f"{entry['shards']} shard{'s' if entry['shards'] > 1 else ''}: {shard['shard']}", shard)
        for entry in entries
        for shard in entry["per_shard"]
    ]
    windows = [entry["counted_window_s"] for entry in entries for _ in entry["per_shard"]]
    totals: dict[str, int] = {}
    for _, shard in bars:
        for name, calls in shard["by_command"].items():
            totals[name] = totals.get(name, 0) + calls
    shown = sorted(totals, key=lambda name: -totals[name])[:7]
    bottoms = [0.0] * len(bars)
    for name in [*shown, "other"]:
        values = [
            (
                shard["by_command"].get(name, 0)
                if name != "other"
                else sum(c for n, c in shard["by_command"].items() if n not in shown)
            )
            / window
            for (_, shard), window in zip(bars, windows, strict=True)
        ]
        left.bar(
            range(len(bars)), values, bottom=bottoms, label=name, edgecolor="black", linewidth=0.3
        )
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    left.set_xticks(range(len(bars)), [label for label, _ in bars], fontsize=8)
    left.set_ylabel("Redis commands/s (scripts' commands included)")
    rate = entries[0]["counted"]["offered_rate"]
    left.set_title(f"Each shard at {rate:g} messages/s", fontsize=10)
    left.legend(fontsize=7, ncol=2)
    left.grid(axis="y", alpha=0.3)
    for entry in entries:
        steps = sorted(
            (s for s in entry["steps"] if s["p99_ms"] is not None), key=lambda s: s["offered_rate"]
        )
        (line,) = right.plot(
            [s["offered_rate"] for s in steps],
            [s["p99_ms"] for s in steps],
            marker="o",
            label=f"{entry['shards']} shard{'s' if entry['shards'] > 1 else ''}",
        )
        counted = entry["counted"]
        if counted["p99_ms"] is not None:
            right.plot(
                [counted["offered_rate"]],
                [counted["p99_ms"]],
                marker="*",
                markersize=12,
                linestyle="none",
                color=line.get_color(),
                label=f"{line.get_label()}, {counted['duration_s']:.0f} s step",
            )
    right.axhline(results["settings"]["p99_limit_ms"], color="red", linewidth=0.8)
    right.set_xscale("log")
    right.set_yscale("log")
    # Plain numbers at powers of 2: a log axis of less than two decades otherwise labels
    # one tick, or its minor ticks on top of each other.
    right.xaxis.set_major_locator(LogLocator(base=2))
    right.xaxis.set_major_formatter(ScalarFormatter())
    right.xaxis.set_minor_formatter(NullFormatter())
    right.set_xlabel("messages/s in all, offered")
    right.set_ylabel("p99 latency, ms")
    right.set_title("Capacity search (3 s steps) and the counted step", fontsize=10)
    right.legend(fontsize=8)
    right.grid(alpha=0.3, which="both")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_capacity(results: Results, path: Path) -> None:
    rooms = results["settings"]["room_sizes"]
    series = [("node-ws", 1), ("tutorial", 1), ("tutorial", 2), ("site", 1), ("site", 2)]
    figure, axis = plt.subplots(figsize=(9, 4.8))
    width = 0.8 / len(series)
    for number, (target, workers) in enumerate(series):
        values = [capacity(results, target, workers, room) or 0 for room in rooms]
        positions = [
            index + (number - len(series) / 2 + 0.5) * width for index in range(len(rooms))
        ]
        bars = axis.bar(
            positions,
            values,
            width,
            label=f"{target}, {workers} worker{'s' if workers > 1 else ''}",
            color=COLOURS[target],
            alpha=0.55 if workers == 1 else 1.0,
            hatch="" if workers == 1 else "//",
            edgecolor="black",
            linewidth=0.5,
        )
        axis.bar_label(bars, labels=[f"{v:g}" if v else "" for v in values], fontsize=7, padding=1)
        for position, value in zip(positions, values, strict=True):
            if not value:  # below the lowest rate tried: no bar on a log axis
                axis.text(position, 0.3, "<0.25", ha="center", fontsize=6, rotation=90)
    axis.set_yscale("log")
    axis.set_ylim(bottom=0.2)
    axis.set_xticks(range(len(rooms)), [f"room of {room}" for room in rooms])
    axis.set_ylabel("capacity, messages/s into the room")
    axis.set_title(f"Capacity (p99 ≤ {results['settings']['p99_limit_ms']:.0f} ms, nothing lost)")
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_latency(results: Results, path: Path) -> None:
    rooms = results["settings"]["room_sizes"]
    figure, axes = plt.subplots(1, len(rooms), figsize=(5 * len(rooms), 4.6), squeeze=False)
    for axis, room in zip(axes[0], rooms, strict=True):
        for item in results["scenarios"]:
            if item["room_size"] != room:
                continue
            steps = [*item["steps"]]
            steps += [s for s in (item["half"], item["at_tutorial_capacity"]) if s]
            steps = sorted(
                (s for s in steps if s["p99_ms"] is not None), key=lambda s: s["offered_rate"]
            )
            if not steps:
                continue
            rates = [s["offered_rate"] for s in steps]
            style = "-" if item["workers"] == 2 else "--"
            label = f"{item['target']} {item['workers']}w"
            colour = COLOURS[item["target"]]
            axis.plot(
                rates,
                [s["p99_ms"] for s in steps],
                style,
                marker="o",
                markersize=3,
                color=colour,
                label=f"{label} p99",
            )
            axis.plot(
                rates,
                [s["p50_ms"] for s in steps],
                style,
                marker=".",
                markersize=2,
                color=colour,
                alpha=0.4,
                linewidth=0.8,
            )
        axis.axhline(results["settings"]["p99_limit_ms"], color="red", linewidth=0.8)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(f"room of {room}")
        axis.set_xlabel("offered rate, messages/s")
        axis.set_ylabel("latency ms (p99 marked, p50 faint; 1 worker dashed)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
