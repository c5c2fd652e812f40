"""The load generator: client processes that hold the sockets, send and measure.

The bench's main process drives a `ClientPool` of client processes. Each runs
one asyncio loop (`websockets`) over its share of the sockets: socket `i`
belongs to process `i % processes`, connects to worker `i % workers` and, on
the site, authenticates as user `i % users`. More than one process, because
one Python loop tops out at a few tens of thousands of frames a second: the
report gives the processes' CPU use for every step, so that a step limited by
the client rather than the server shows as such.

A step offers `rate` messages a second into the room for `duration` seconds,
from the first `senders` sockets in turn (message m is due at t0 + m / rate,
from sender m % senders). Every body is JSON naming the step, the sender, the
sender's sequence number and the time the message was *due* (so a client
that falls behind, or a server that pushes back, shows as latency instead of
quietly lowering the rate). Every socket, the senders' included, is a
member: each message is owed to all of them. Per step and socket the client
counts unique deliveries, duplicates and messages that arrive after a later
one of the same sender (reordered); latency is receipt minus due time, on
one machine's clock.

- `pool.py`: `ClientPool`, in the bench's main process: the processes, and a
  step's measurement from what they report.
- `client.py`: one client process, its sockets driven by the pool's commands.
- `sockets.py`: one client socket, websockets' sans-I/O protocol on asyncio.
- `adapters.py`: one adapter per wire format (the site, the tutorial, node-ws).
"""
