"""python manage.py chat_search_rebuild [--force] [--check]

Builds the search index of messages again in CHAT_SEARCH_LANGUAGE, when it
was built in another (or is missing): the step after changing the setting.
Until then, searches stem words in the new language and look them up in
vectors made in the old one, so that some words no longer match.

On PostgreSQL the rebuild rewrites the messages table, holding writes to it
until it ends (about a minute per million messages); on SQLite it refills the
FTS5 table. `--check` only says whether a rebuild is needed (exit status 1 if so).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from chat.search.schema import SearchSchemaError, index_definition, index_matches, index_rebuild


class Command(BaseCommand):
    help = "Build the search index of messages again in CHAT_SEARCH_LANGUAGE."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default", help="the database alias")
        parser.add_argument(
            "--force", action="store_true", help="rebuild even if the language is the same"
        )
        parser.add_argument(
            "--check", action="store_true", help="only say whether a rebuild is needed"
        )

    def handle(self, *args: Any, database: str, force: bool, check: bool, **options: Any) -> None:
        connection = connections[database]
        language = settings.CHAT_SEARCH_LANGUAGE
        before = index_definition(connection)
        if not force and index_matches(connection, language=language):
            self.stdout.write(f"The search index is built in {language!r} already ({before}).")
            return
        if check:
            raise CommandError(
                f"The search index needs a rebuild for {language!r} (now: {before or 'none'})."
            )
        started = time.monotonic()
        try:
            index_rebuild(connection, language=language)
        except SearchSchemaError as error:
            raise CommandError(str(error)) from None
        seconds = time.monotonic() - started
        self.stdout.write(
            f"Rebuilt the search index in {language!r} in {seconds:.1f} s"
            f" (was: {before or 'none'}; now: {index_definition(connection)})."
        )
