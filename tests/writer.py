"""A process that stores messages as a worker does, for tests of concurrent writers.

    python -m tests.writer <room id> <author id> <count> <start at, epoch seconds>

It waits for the start time (so that several such processes begin together),
stores `count` messages through `message_create`, each followed by a resend
of the same client_id and an edit, and prints JSON: the numbers it got, and
when its first and last writes committed. (An edit reads before it writes:
the case where SQLite needs IMMEDIATE transactions.)
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from chat.domain.writes import message_create, message_edit

    room_id, author_id, count, start_at = int(argv[0]), int(argv[1]), int(argv[2]), float(argv[3])
    author = get_user_model().objects.get(pk=author_id)
    time.sleep(max(0.0, start_at - time.time()))
    numbers, resent, first, last = [], [], time.time(), 0.0
    for index in range(count):
        client_id = f"{author.get_username()}-{index}"
        body = f"{author.get_username()} {index}"
        message, created = message_create(
            room_id=room_id, author=author, body=body, client_id=client_id
        )
        assert created, client_id
        again, created = message_create(
            room_id=room_id, author=author, body=body, client_id=client_id
        )
        assert not created and again.pk == message.pk, client_id
        message_edit(room_id=room_id, number=message.number, user=author, body=body + " edited")
        numbers.append(message.number)
        resent.append(again.number)
        last = time.time()
    print(json.dumps({"numbers": numbers, "resent": resent, "first": first, "last": last}))


if __name__ == "__main__":
    main(sys.argv[1:])
