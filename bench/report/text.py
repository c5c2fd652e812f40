"""How numbers read in the document, and the lookups into the results every section shares."""

from __future__ import annotations

from typing import Any

TARGETS = ("node-ws", "tutorial", "site")
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


def percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


def at_capacity(entry: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The passing step at an entry's capacity, and the server's CPU per message there
    (µs per delivery times the room's size; "-" when no step passed)."""
    at = next(
        (s for s in entry["steps"] if s["passed"] and s["offered_rate"] == entry["capacity"]),
        None,
    )
    cpu = at["server_cpu_us_per_delivery"] if at else None
    return at, "-" if cpu is None else f"{cpu * entry['room_size']:,.0f}"
