"""The admin runs rooms and moderates messages; deletions reach open pages live.

One module per part, each registering its models when imported here (Django's
autodiscover imports `chat.admin`):

    rooms.py     rooms, their members and invites, archiving
    messages.py  messages and reactions: moderators edit and delete them
    files.py     uploaded files
    people.py    mutes, bots and their keys, users with their files' bytes
    notes.py     rooms' shared notes
"""

from chat.admin.files import AttachmentAdmin
from chat.admin.messages import MessageAdmin, ReactionAdmin
from chat.admin.notes import NotesDocumentAdmin
from chat.admin.people import BotAdmin, BotKeyAdmin, ChatUserAdmin, MuteAdmin
from chat.admin.rooms import RoomAdmin

__all__ = [
    "AttachmentAdmin",
    "BotAdmin",
    "BotKeyAdmin",
    "ChatUserAdmin",
    "MessageAdmin",
    "MuteAdmin",
    "NotesDocumentAdmin",
    "ReactionAdmin",
    "RoomAdmin",
]
