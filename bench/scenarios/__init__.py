"""The scenarios of `make bench`, by family; each a function of the run's `Bench` (run.py).

- `rooms.py`: capacity per target, worker count and room size, with idle memory
  and the reconnect storm; many small rooms, all chatting at once.
- `audience.py`: thousands of sockets watching one room.
- `shards.py`: the site on 3 Redis shards against the site on 1.
- `site_only.py`: the site's shared notes, history API and search.
"""
