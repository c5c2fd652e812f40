"""A room's shared notes: a Yjs document edited live over `/ws/rooms/<slug>/notes/`.

- `codec`: the y-protocols messages, read strictly and written;
- `store`: the document in the database, read (writes: chat.notes.actions);
- `room`: a worker's copy of a room's document, its relay between workers;
- `pace`: the rate limit per person, as backpressure;
- `consumer`: the socket.

docs/protocol.md (The notes socket) is the contract; docs/architecture.md
(Shared notes) says how it is kept and passed between workers.
"""
