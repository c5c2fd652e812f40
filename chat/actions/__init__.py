"""Every write of the chat, one function each: check, write, emit on commit.

Each action passes the one gate (chat.domain.access.write_check, and the author's
state in its transaction), writes in one transaction, and hands its events
to the outbox (`outbox.send_on_commit`), which sends them once that
transaction commits: from the caller's thread for sync code (views, the
admin, commands, chat.actions.publish), and from the event loop for a socket, which
runs the action with `outbox.run` and relays what it emitted after its own
acknowledgement. No other module sends a room's event (tests/test_actions.py).

    messages.py   message_send, message_edit, message_delete, message_moderate
    reactions.py  reaction_set, reaction_moderate
    rooms.py      room_state_set, room_read, notify_set
    live.py       comment_send, typing_tell: told, never stored
"""
