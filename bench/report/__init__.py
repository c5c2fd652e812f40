"""The dated results document: README.md (summary, method, raw numbers) and its plots.

    report.write(results, Path("bench/results/<date>"))

Reads only the results dictionary that run.py also saves as results.json, so
a report can be rewritten from a saved run (`run.py --report-only`).

- `document.py`: the title, the method and the raw numbers.
- `scenarios.py`: many small rooms, an audience, shared notes, search.
- `shards.py`: Redis shards, 3 against 1.
- `summary.py`: capacity, latency, memory and the storm, history, the client, logs.
- `verdicts.py`: the team's targets, each met or not.
- `text.py`: how numbers read, and the lookups every section shares.
- `plots.py`: the PNGs.
"""

from __future__ import annotations

from pathlib import Path

from report.document import method, raw, title
from report.plots import plot_audience, plot_capacity, plot_latency, plot_shards
from report.scenarios import audience, notes_section, search_section, small_rooms
from report.shards import shards_section
from report.summary import summary
from report.text import LOWEST_RATE, Results


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
