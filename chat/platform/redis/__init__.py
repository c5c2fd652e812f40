"""Every Redis the site talks to, decided here alone (docs/architecture.md, Redis).

- `config`: the shards, from the environment (plain URLs or Sentinel masters);
  no Django import, so that chatsite/settings.py can read it.
- `routing`: which shard an application key lives on, by the consistent hash
  channels-redis uses for groups and channels, on the room or the user.
- `keys`: every key name.
- `scripts`: every Lua script; each touches keys of one shard only.
- `pools`: the connection pools (blocking, through Sentinel where configured),
  async for sockets and sync for views, and the timeout every call is bound by.

No module outside this package opens a client or picks a shard.
"""
