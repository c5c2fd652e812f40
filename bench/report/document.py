"""The document's frame: its title, the method, and every step of every search."""

from __future__ import annotations

from typing import Any

from report.shards import shard_log_notes, shards_method
from report.text import TARGETS, Results, ms, rate_text


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
        "  - **site**: `python -m chat.platform.server $(cat deploy/daphne.args)` per worker,"
        " each on"
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
        f"- Client: `bench/loadgen/`, {settings['client_processes']} processes of asyncio"
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
