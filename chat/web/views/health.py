"""/healthz: the database and every Redis shard, each checked."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_http_methods

from chat.platform import wire
from chat.platform.redis.pools import shard_names, shards_ping


def health_details_shown(request: HttpRequest) -> bool:
    """Whether /healthz may say why a part fails (its error text names hosts and
    versions): to staff, and to a probe on this machine that came through no proxy."""
    if request.user.is_authenticated and request.user.is_staff:
        return True
    local = request.META.get("REMOTE_ADDR") in ("127.0.0.1", "::1")
    return local and "HTTP_X_FORWARDED_FOR" not in request.META


@require_http_methods(["GET", "HEAD"])
def healthz(request: HttpRequest) -> JsonResponse:
    """The database and every Redis shard, each checked (docs/protocol.md, HTTP API).

    503 when the database is down, or every shard: the worker can serve nothing
    then. A shard down serves its rooms no more, and the worker all the others:
    200, "degraded", naming the shard. Why a part fails is said to
    health_details_shown only.
    """
    report: dict[str, Any] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        report["db"] = "ok"
    except DatabaseError as error:
        report["db"] = "error"
        report["db_error"] = str(error).strip().splitlines()[0][:200] if str(error) else "error"
    layer = get_channel_layer()
    failures = async_to_sync(shards_ping)(layer)
    shards: list[dict[str, Any]] = [
        {"shard": index, "status": "ok" if failure is None else "error"}
        for index, failure in enumerate(failures)
    ]
    details = health_details_shown(request)
    for shard, failure, name in zip(shards, failures, shard_names(layer), strict=True):
        if details:
            shard["name"] = name
            if failure is not None:
                shard["error"] = repr(failure)[:200]
    down = [shard["shard"] for shard in shards if shard["status"] == "error"]
    report["redis"] = "ok" if not down else "error" if len(down) == len(shards) else "degraded"
    if details and report["redis"] == "error":
        report["redis_error"] = str(shards[0].get("error", "error"))
    if len(shards) > 1:
        report["redis_shards"] = shards
    ok = report["db"] == "ok" and report["redis"] != "error"
    status = "ok" if not down and ok else "degraded" if ok else "unavailable"
    if details and (wire.stats.sockets or wire.stats.fallback):
        # Under daphne, once a socket has opened: whether broadcast frames go shared.
        report["wire"] = wire.stats.report()
    if not details:
        report = {name: value for name, value in report.items() if not name.endswith("_error")}
    return JsonResponse({"status": status, **report}, status=200 if ok else 503)
