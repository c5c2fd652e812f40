"""The sections of the scenarios that stand alone: many small rooms, an audience, shared
notes, and search."""

from __future__ import annotations

from report.text import Results, at_capacity, ms, rate_text, ratio, ratio_text, verdict


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
        at, per_message = at_capacity(entry)
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
