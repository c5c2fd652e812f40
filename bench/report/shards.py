"""Redis shards, 3 against 1: the section, its bullet of the method, and its sites' logs."""

from __future__ import annotations

from typing import Any

from report.text import Results, at_capacity, ms, percent, rate_text, ratio, ratio_text, verdict


def shard_deviations(entry: dict[str, Any]) -> tuple[float, float]:
    """The most and the fewest commands of a shard, against the shards' mean (+0.05 is 5%
    above it)."""
    calls = [shard["calls"] for shard in entry["per_shard"]]
    mean = sum(calls) / len(calls)
    return max(calls) / mean - 1, min(calls) / mean - 1


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
        at, per_message = at_capacity(entry)
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
        "What sends them (chat/platform/redis/, chat/platform/layers.py): `evalsha` runs the"
        " group send's"
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
        " queue when its `/healthz` is first asked"
        " (`chat.platform.workers.queue_shard_choose`), and"
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


def shard_log_notes(entry: dict[str, Any]) -> list[str]:
    """What one site of the shards scenario logged at WARNING and above."""
    counts = entry.get("log_warnings") or {}
    top = sorted(counts.items(), key=lambda item: -item[1])[:6]
    return [
        f"Workers' logs: {sum(counts.values())} WARNING or ERROR lines" + (":" if top else "."),
        *(f"- {count} x `{message.replace('`', '')}`" for message, count in top),
        "",
    ]
