"""The search index of messages, per database (chat/search/schema.py says what it is).

PostgreSQL: a stored generated tsvector column and its GIN index, in the
language of CHAT_SEARCH_LANGUAGE as this migration runs (adding the column
rewrites chat_message: about a minute per million messages). SQLite: an FTS5
table with the triggers that keep it in step, filled from the messages
stored. Other databases get no index. Reversed, it drops what it made.
"""

from django.conf import settings
from django.db import migrations

from chat.search import schema as search_schema


def index_create(apps, schema_editor):
    if schema_editor.connection.vendor in ("postgresql", "sqlite"):
        search_schema.index_create(
            schema_editor.connection, language=settings.CHAT_SEARCH_LANGUAGE
        )


def index_drop(apps, schema_editor):
    search_schema.index_drop(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0005_broadcast_rooms_and_bots'),
    ]

    operations = [migrations.RunPython(index_create, index_drop, elidable=False)]
