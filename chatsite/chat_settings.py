"""The chat's own limits, rates and timings (CHAT_*), read from the environment.

chatsite/settings.py, the settings module, imports every name of this one;
Django's settings and the services the site stands on are read there.

Every variable read here (mirrored in .env.example, with those that
chatsite/settings.py lists):

    CHAT_HEARTBEAT_SECONDS     how often a worker renews its sockets' presence and says it
                               lives; default 10. A worker silent for three is taken for
                               dead: its users are `left`, its channels leave every group
    CHAT_RATE_LIMIT            "<count>/<seconds>s" newly stored messages per user; default 20/10s
    CHAT_REACTION_RATE_LIMIT   "<count>/<seconds>s" reactions added or taken back per user;
                               default 30/10s
    CHAT_TOKEN_TTL             lifetime of /api/token/ tokens in seconds; default 300
    CHAT_BATCH_TICK_MS         a broadcast room's messages within this many milliseconds
                               of its last frame reach each socket as one frame;
                               default 50
    CHAT_PUBLISHER             the bot account Django code publishes as (chat.actions.publish)
                               when it names no author; default "announcements"
    CHAT_PUBLISH_RATE_LIMIT    "<count>/<seconds>s" messages per bot key; default 50/1s
    CHAT_RESERVED_USERNAMES    comma-separated names nobody may sign up under, besides
                               CHAT_PUBLISHER and every bot's (any case); default
                               "admin,administrator,moderator,root,staff,support,system"
    CHAT_COMMENT_RATE_LIMIT    "<count>/<seconds>s" live comments per user; default 5/10s
    CHAT_LOGIN_LIMIT           "<count>/<seconds>s" failed log-ins (form or /api/token/) per
                               username and, tenfold, per client address; default 10/900s
    CHAT_SIGNUP_LIMIT          "<count>/<seconds>s" sign-up attempts per client address;
                               default 10/3600s
    CHAT_DIRECT_RATE_LIMIT     "<count>/<seconds>s" new direct conversations a user starts
                               (/dm/<username>/); default 30/3600s
    CHAT_ROOM_CREATORS         who may create rooms: "all" (anyone signed in) or "staff";
                               default "all". Owners run the rooms they make either way
    CHAT_SEARCH_RATE_LIMIT     "<count>/<seconds>s" searches per user (page and API);
                               default 30/60s
    CHAT_PEOPLE_RATE_LIMIT     "<count>/<seconds>s" look-ups of people by name per user
                               (/people/, the picker, /api/users/); default 120/60s
    CHAT_SEARCH_LANGUAGE       the language messages are searched in: a PostgreSQL text
                               search configuration (english, simple, german, ...);
                               default "english". The index is built in it: after a
                               change, run `manage.py chat_search_rebuild`. On SQLite,
                               "english" stems words, any other matches them as written

  Files (docs/files.md):
    CHAT_UPLOAD_MAX_BYTES      the largest file, in bytes; default 10485760 (10 MiB).
                               deploy/nginx/chat.conf's client_max_body_size must allow it
    CHAT_UPLOAD_RATE_LIMIT     "<count>/<seconds>s" uploads per user; default 30/60s
    CHAT_UPLOAD_QUOTA_BYTES    the bytes one person's stored files may take (every upload
                               of theirs, attached or not, and its thumbnail); an upload
                               that would go over it is refused (413 over_quota); default
                               1073741824 (1 GiB)
    CHAT_UPLOAD_KEEP_SECONDS   an upload no message names is deleted this many seconds
                               after it came (manage.py chat_uploads_cleanup); default 86400
    CHAT_IMAGE_MAX_PIXELS      the largest image decoded (to check it and make its thumbnail),
                               in pixels of an RGBA PNG: a decode may take 4 bytes this many;
                               other kinds by what theirs takes (docs/files.md, Memory). A
                               larger one is kept as a plain file; default 24000000
    CHAT_IMAGE_DECODES         image decodes a worker runs at once (each in up to 4 bytes
                               x CHAT_IMAGE_MAX_PIXELS of memory); an upload that waits 10 s
                               for one is refused with 503 unavailable; default 2

  Shared notes (docs/protocol.md, The notes socket):
    CHAT_NOTES_MAX_BYTES       the largest a room's notes may grow, in bytes of the encoded
                               Yjs document; an update that would pass it is refused (not
                               applied, not stored); default 1048576 (1 MiB)
    CHAT_NOTES_FRAME_MAX_BYTES the largest message a notes socket takes; a larger one closes
                               it with 4009. At most daphne's --websocket-max-message-size
                               (deploy/daphne.args, 1 MiB); default 262144 (256 KiB)
    CHAT_NOTES_RATE_LIMIT      "<count>/<seconds>s" updates per person (per worker); past it
                               the socket's next messages wait until the window allows;
                               default 50/1s
    CHAT_NOTES_COMPACT_EVERY   stored updates after which a room's notes are compacted into
                               a snapshot (the updates it holds are deleted); default 200
"""

from __future__ import annotations

import os
import re

from django.core.exceptions import ImproperlyConfigured

from chatsite.env import env_int, env_list, env_rate

CHAT_HEARTBEAT_SECONDS = env_int("CHAT_HEARTBEAT_SECONDS", 10, minimum=1)
# Seconds over which a broadcast room's messages are gathered into one frame per socket.
CHAT_BATCH_TICK = env_int("CHAT_BATCH_TICK_MS", 50, minimum=1) / 1000
# Seconds a socket holds a message that came ahead of a missing one, waiting for
# the missing one's broadcast, before reading it from the database.
CHAT_HOLE_WAIT = 0.2

CHAT_RATE_LIMIT = env_rate("CHAT_RATE_LIMIT", "20/10s")
CHAT_REACTION_RATE_LIMIT = env_rate("CHAT_REACTION_RATE_LIMIT", "30/10s")
CHAT_PUBLISHER = os.environ.get("CHAT_PUBLISHER") or "announcements"
CHAT_PUBLISH_RATE_LIMIT = env_rate("CHAT_PUBLISH_RATE_LIMIT", "50/1s")
CHAT_RESERVED_USERNAMES = env_list(
    "CHAT_RESERVED_USERNAMES", "admin,administrator,moderator,root,staff,support,system"
)
CHAT_COMMENT_RATE_LIMIT = env_rate("CHAT_COMMENT_RATE_LIMIT", "5/10s")
# Against password guessing and mass sign-ups, shared by every worker (chat/domain/limits.py).
CHAT_LOGIN_LIMIT = env_rate("CHAT_LOGIN_LIMIT", "10/900s")
CHAT_SIGNUP_LIMIT = env_rate("CHAT_SIGNUP_LIMIT", "10/3600s")
CHAT_TOKEN_TTL = env_int("CHAT_TOKEN_TTL", 300, minimum=1)
CHAT_SEARCH_RATE_LIMIT = env_rate("CHAT_SEARCH_RATE_LIMIT", "30/60s")
CHAT_DIRECT_RATE_LIMIT = env_rate("CHAT_DIRECT_RATE_LIMIT", "30/3600s")
# Who may create public and private rooms (chat.domain.access.create_check).
CHAT_ROOM_CREATORS = (os.environ.get("CHAT_ROOM_CREATORS") or "").strip().lower() or "all"
if CHAT_ROOM_CREATORS not in ("all", "staff"):
    raise ImproperlyConfigured(f"CHAT_ROOM_CREATORS={CHAT_ROOM_CREATORS!r} is not all or staff")
CHAT_PEOPLE_RATE_LIMIT = env_rate("CHAT_PEOPLE_RATE_LIMIT", "120/60s")
CHAT_SEARCH_LANGUAGE = (os.environ.get("CHAT_SEARCH_LANGUAGE") or "").strip() or "english"
if not re.fullmatch(r"[a-z_][a-z0-9_]*", CHAT_SEARCH_LANGUAGE):
    raise ImproperlyConfigured(
        f"CHAT_SEARCH_LANGUAGE={CHAT_SEARCH_LANGUAGE!r} is not a text search configuration"
        " name (lowercase letters, digits and underscores, such as english or simple)"
    )
# Protocol limits (docs/protocol-v1.md): code points of a body, characters of a client_id,
# bytes of one WebSocket message, messages replayed on resume.
CHAT_BODY_MAX = 4000
CHAT_CLIENT_ID_MAX = 64
CHAT_FRAME_MAX_BYTES = 64 * 1024
# Code points of a live comment.
CHAT_COMMENT_MAX = 200
CHAT_REPLAY_MAX = 1000
# Shared notes (chat/notes/): the document's cap, a socket's message cap, updates per
# person, and how many stored updates are compacted into a snapshot.
CHAT_NOTES_MAX_BYTES = env_int("CHAT_NOTES_MAX_BYTES", 1024 * 1024, minimum=1)
CHAT_NOTES_FRAME_MAX_BYTES = env_int("CHAT_NOTES_FRAME_MAX_BYTES", 256 * 1024, minimum=64)
if CHAT_NOTES_FRAME_MAX_BYTES > 1024 * 1024:
    raise ImproperlyConfigured(
        "CHAT_NOTES_FRAME_MAX_BYTES may be at most daphne's message cap, 1048576"
    )
CHAT_NOTES_RATE_LIMIT = env_rate("CHAT_NOTES_RATE_LIMIT", "50/1s")
CHAT_NOTES_COMPACT_EVERY = env_int("CHAT_NOTES_COMPACT_EVERY", 200, minimum=1)

# Uploaded files (chat/files/attachments.py, docs/files.md): the largest, uploads per person,
# the bytes one person's files may take, how long an upload no message names is kept.
CHAT_UPLOAD_MAX_BYTES = env_int("CHAT_UPLOAD_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
CHAT_UPLOAD_RATE_LIMIT = env_rate("CHAT_UPLOAD_RATE_LIMIT", "30/60s")
CHAT_UPLOAD_QUOTA_BYTES = env_int("CHAT_UPLOAD_QUOTA_BYTES", 1024**3, minimum=0)
CHAT_UPLOAD_KEEP_SECONDS = env_int("CHAT_UPLOAD_KEEP_SECONDS", 86400, minimum=60)
# Images (chat/files/images.py): the budget of one decode is 4 bytes x CHAT_IMAGE_MAX_PIXELS,
# measured to keep one upload's worker under 256 MiB; decodes at once per worker, and
# the seconds an upload waits for one before it is refused (503 unavailable).
CHAT_IMAGE_MAX_PIXELS = env_int("CHAT_IMAGE_MAX_PIXELS", 24_000_000, minimum=1)
CHAT_IMAGE_DECODES = env_int("CHAT_IMAGE_DECODES", 2, minimum=1)
CHAT_IMAGE_DECODE_WAIT = 10.0
# Files a message may name; bytes of an upload's request beyond its file (the
# multipart framing, the name): a request over both together is refused unread.
CHAT_ATTACHMENTS_MAX = 10
CHAT_UPLOAD_OVERHEAD_BYTES = 64 * 1024
