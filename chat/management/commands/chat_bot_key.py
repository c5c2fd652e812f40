"""python manage.py chat_bot_key <bot-username> --room <slug> [--room ...]

Makes the bot account when no account has that name, and a new key that
publishes into the rooms named; prints the key once: only a digest of it is
kept. A person's account never becomes a bot: its name is refused.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.domain.bots import bot_account, bot_key_issue
from chat.errors import ChatError
from chat.models import Room


class Command(BaseCommand):
    help = "Make a bot's API key for the rooms named (and the bot, when missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the bot account (made when missing)")
        parser.add_argument(
            "--room", action="append", required=True, dest="rooms", help="a room's slug (repeat)"
        )
        parser.add_argument("--name", default="", help="what the key is for, for the admin")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        rooms: list[str] = options["rooms"]
        found = {room.slug: room for room in Room.objects.filter(slug__in=rooms)}
        missing = sorted(set(rooms) - set(found))
        if missing:
            raise CommandError(f"no such room: {', '.join(missing)}")
        chosen = [found[slug] for slug in rooms]
        try:
            _, key = bot_key_issue(user=bot_account(username), rooms=chosen, name=options["name"])
        except ChatError as error:
            raise CommandError(error.detail) from None
        self.stdout.write(key)
        self.stderr.write(
            f"A key for {username} in {', '.join(rooms)}. It is shown only now: keep it secret.\n"
            "Publish with: curl -H 'Authorization: Bearer <key>'"
            " -H 'Content-Type: application/json'"
            f' -d \'{{"body": "Hello"}}\' http://HOST/api/rooms/{rooms[0]}/messages/'
        )
