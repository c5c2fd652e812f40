from django.apps import AppConfig
from django.core import checks
from django.core.signals import request_finished
from django.db import connections
from django.db.models.signals import post_migrate


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat.domain import accounts
        from chat.files import attachments, images
        from chat.platform.redis import checks as redis_checks
        from chat.search import schema as search_schema
        from chat.sockets import moderation

        moderation.connect()
        attachments.connect()
        images.memory_setup()
        post_migrate.connect(search_schema.after_migrate, sender=self, dispatch_uid="chat-search")
        checks.register(search_schema.index_check, checks.Tags.database)
        checks.register(accounts.publisher_check, checks.Tags.database)
        checks.register(redis_checks.configuration_check)
        # After Django's own handler (which keeps a connection under CONN_MAX_AGE):
        # a request's thread ends with the request, so must its connection.
        request_finished.connect(_close_request_connections, dispatch_uid="chat-close-db")


def _close_request_connections(**kwargs: object) -> None:
    for connection in connections.all(initialized_only=True):
        # Never one inside a transaction: the test client's requests run in
        # the test's own (Django disconnects its own handler for them).
        if not connection.in_atomic_block:
            connection.close()
