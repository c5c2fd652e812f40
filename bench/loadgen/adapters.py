"""One adapter per wire format: how a target's sockets are addressed, and its frames read."""

from __future__ import annotations

import json
from typing import Any


class Adapter:
    """How a target's sockets are addressed, and its chat frames written and read."""

    # The site is ready once its `welcome` frame has arrived; the others at the handshake.
    ready_frame = False

    def __init__(self, spec: dict[str, Any]) -> None:
        self.ports: list[int] = spec["ports"]
        self.room: str = spec["room"]
        # Many rooms: socket i is in rooms[i // room_size].
        self.rooms: list[str] | None = spec.get("rooms")
        self.room_size: int = spec.get("room_size") or 1
        self.errors = 0

    def room_of(self, index: int) -> str:
        return self.rooms[index // self.room_size] if self.rooms else self.room

    def url(self, index: int, resume: bool = False) -> str:
        raise NotImplementedError

    def origin(self, index: int) -> str | None:
        return None

    def encode(self, body: str, client_id: str) -> str:
        raise NotImplementedError

    def decode(self, text: str) -> list[str]:
        """The bodies of the chat messages a frame carries (none for any other frame)."""
        raise NotImplementedError

    def port(self, index: int) -> int:
        return self.ports[index % len(self.ports)]


class SiteAdapter(Adapter):
    """The site: `?token=`, `message.send` with a client_id as the page sends, `message`."""

    ready_frame = True

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.tokens: list[str] = spec["tokens"]

    def url(self, index: int, resume: bool = False) -> str:
        token = self.tokens[index % len(self.tokens)]
        # A reconnecting client resumes after the last id it saw (none here).
        after = "&after=0" if resume else ""
        room = self.room_of(index)
        return f"ws://127.0.0.1:{self.port(index)}/ws/rooms/{room}/?token={token}{after}"

    def encode(self, body: str, client_id: str) -> str:
        return json.dumps({"type": "message.send", "body": body, "client_id": client_id})

    def decode(self, text: str) -> list[str]:
        frame = json.loads(text)
        kind = frame.get("type")
        if kind == "message":
            return [str(frame["body"])]
        if kind == "messages":  # a broadcast room's tick of messages
            return [str(message["body"]) for message in frame["messages"]]
        if kind == "error":
            self.errors += 1
        return []


class SiteBroadcastAdapter(SiteAdapter):
    """The site's broadcast room: the senders post as staff users; the audience
    watches without signing in (the room is open to viewers), as a browser's
    page would, with an Origin and no token."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.senders: int = spec["senders"]

    def url(self, index: int, resume: bool = False) -> str:
        if index < self.senders:
            return super().url(index, resume)
        after = "?after=0" if resume else ""
        return f"ws://127.0.0.1:{self.port(index)}/ws/rooms/{self.room}/{after}"

    def origin(self, index: int) -> str | None:
        return None if index < self.senders else f"http://127.0.0.1:{self.port(index)}"


class TutorialAdapter(Adapter):
    """The Channels tutorial: `/ws/chat/<room>/`, {"message": ...} both ways."""

    def url(self, index: int, resume: bool = False) -> str:
        return f"ws://127.0.0.1:{self.port(index)}/ws/chat/{self.room_of(index)}/"

    def origin(self, index: int) -> str | None:
        # AllowedHostsOriginValidator refuses a socket without Origin, as a browser sends it.
        return f"http://127.0.0.1:{self.port(index)}"

    def encode(self, body: str, client_id: str) -> str:
        return json.dumps({"message": body})

    def decode(self, text: str) -> list[str]:
        return [str(json.loads(text)["message"])]


class NodeAdapter(Adapter):
    """The ws broadcast server: raw text, every frame to every client."""

    def url(self, index: int, resume: bool = False) -> str:
        return f"ws://127.0.0.1:{self.port(index)}/"

    def encode(self, body: str, client_id: str) -> str:
        return body

    def decode(self, text: str) -> list[str]:
        return [text]


ADAPTERS: dict[str, type[Adapter]] = {
    "site": SiteAdapter,
    "site-broadcast": SiteBroadcastAdapter,
    "tutorial": TutorialAdapter,
    "node": NodeAdapter,
}
