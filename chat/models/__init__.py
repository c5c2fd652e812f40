"""The chat's tables, one module per part; every model and helper is importable from here.

    rooms.py     Room, Membership (with Role), Invite
    messages.py  Message, Reaction, Mention; keyset pages of history
    files.py     Attachment
    bots.py      Bot, BotKey
    reading.py   ReadState, NotifySetting (with Notify)
    mutes.py     Mute
    notes.py     NotesDocument, NotesUpdate

Django finds the models through this package (`chat.models`): each module is
imported here, so every model is registered when the app loads.
"""

from chat.models.bots import Bot, BotKey
from chat.models.files import Attachment, AttachmentQuerySet
from chat.models.messages import (
    HistoryPage,
    Mention,
    Message,
    MessageQuerySet,
    Reaction,
    wire_relations_set,
)
from chat.models.mutes import Mute, MuteQuerySet
from chat.models.notes import NotesDocument, NotesUpdate
from chat.models.reading import Notify, NotifySetting, ReadState, notify_default
from chat.models.rooms import (
    SERVICE_FIELDS,
    SLUG_PATTERN,
    Invite,
    InviteQuerySet,
    Membership,
    Role,
    Room,
    RoomQuerySet,
    slug_validator,
)

__all__ = [
    "SERVICE_FIELDS",
    "SLUG_PATTERN",
    "Attachment",
    "AttachmentQuerySet",
    "Bot",
    "BotKey",
    "HistoryPage",
    "Invite",
    "InviteQuerySet",
    "Membership",
    "Mention",
    "Message",
    "MessageQuerySet",
    "Mute",
    "MuteQuerySet",
    "NotesDocument",
    "NotesUpdate",
    "Notify",
    "NotifySetting",
    "Reaction",
    "ReadState",
    "Role",
    "Room",
    "RoomQuerySet",
    "notify_default",
    "slug_validator",
    "wire_relations_set",
]
