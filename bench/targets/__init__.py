"""The servers under test: the site, the Channels tutorial, the ws broadcast server.

Each target starts its worker processes on free ports of 127.0.0.1, answers
what its sockets need (`spec`), makes a fresh room for every scenario, and
reads its workers' CPU time and resident memory from /proc.

- `base.py`: what every target does, and what they share (paths, the shared
  Redis and PostgreSQL, one secret key).
- `site.py`: the site on its real path, with its database and its users' tokens.
- `baselines.py`: the Channels tutorial and the ws broadcast server.
- `servers.py`: one server process on a free port; `RedisServer`, a redis-server
  of the run's own (the shards scenario), with its command counts.
- `proc.py`: CPU time and resident memory from /proc.
- `machine.py`: the machine and the versions a run is described by.
"""
