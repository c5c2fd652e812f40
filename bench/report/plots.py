"""The plots beside the document: capacity, latency, the audience, the shards."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from report.text import Results, capacity

COLOURS = {"node-ws": "#4c72b0", "tutorial": "#dd8452", "site": "#55a868"}


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
