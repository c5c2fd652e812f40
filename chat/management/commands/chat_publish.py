"""python manage.py chat_publish <slug> "<text>" [--as <username>] [--client-id <id>]

Publishes a message into a room, as Django code does with chat.actions.publish.publish:
stored, numbered and broadcast to every socket of the room on every worker.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.actions.publish import publish
from chat.errors import ChatError
from chat.models import Room


class Command(BaseCommand):
    help = "Publish a message into a room."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("text")
        parser.add_argument(
            "--as", dest="author", default=None, help="the author (default: CHAT_PUBLISHER)"
        )
        parser.add_argument("--client-id", default=None, help="publish once, however many runs")

    def handle(
        self,
        *args: Any,
        slug: str,
        text: str,
        author: str | None,
        client_id: str | None,
        **options: Any,
    ) -> None:
        try:
            message = publish(slug, text, author=author, client_id=client_id)
        except Room.DoesNotExist:
            raise CommandError(f"no such room: {slug}") from None
        except ChatError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        who = author or settings.CHAT_PUBLISHER
        self.stdout.write(f"{slug}#{message.number} by {who}")
