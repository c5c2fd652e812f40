"""python manage.py chat_uploads_cleanup [--every <seconds>]

Deletes the uploads that no message named within CHAT_UPLOAD_KEEP_SECONDS
(default a day) of coming, and their stored files. Deployment runs it with
`--every 3600`: deploy/supervisord.conf under `make run`, the `cleanup` service
in docker-compose.yml. (chat.files.attachments.attachments_unattached_delete)
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, connections

from chat.files.attachments import attachments_unattached_delete

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Delete uploads that no message named within CHAT_UPLOAD_KEEP_SECONDS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every",
            type=int,
            default=None,
            metavar="SECONDS",
            help="keep running, cleaning up every SECONDS (default: once, then exit)",
        )

    def handle(self, *args: Any, every: int | None, **options: Any) -> None:
        if every is None:
            self.clean()
            return
        while True:
            try:
                self.clean()
            except DatabaseError:
                # The database is away for now: the next round tries again.
                logger.exception("uploads cleanup failed")
            connections.close_all()  # none held open between rounds
            time.sleep(max(every, 1))

    def clean(self) -> None:
        keep = timedelta(seconds=settings.CHAT_UPLOAD_KEEP_SECONDS)
        deleted = attachments_unattached_delete(older_than=keep)
        self.stdout.write(f"deleted {deleted} upload(s) not attached within {keep}")
        self.stdout.flush()  # a log line now, not when the buffer fills hours later
