"""Every Lua script the site runs in Redis. Each touches the keys of one shard only:
its KEYS are a room's, a user's, a group's, or one key alone (chat.platform.redis.routing).

A script is run by its SHA-1 (EVALSHA): a call sends the arguments, not the
script's text; a shard that does not know it yet (restarted, or new) is sent
the text once (EVAL), which it then keeps.
"""

from __future__ import annotations

import hashlib
from typing import Any

from redis.exceptions import NoScriptError


class Script:
    """One Lua script, run by its SHA-1 on any client (async or sync)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()  # noqa: S324  (Redis's own name)

    async def run(self, connection: Any, keys: int, *args: Any) -> Any:
        try:
            return await connection.evalsha(self.sha, keys, *args)
        except NoScriptError:
            return await connection.eval(self.text, keys, *args)

    def run_sync(self, client: Any, keys: int, *args: Any) -> Any:
        try:
            return client.evalsha(self.sha, keys, *args)
        except NoScriptError:
            return client.eval(self.text, keys, *args)


# KEYS[1] the user's set; ARGV: now, window, limit, member.
# Returns 0 and adds the member, or the seconds until the oldest entry leaves.
RESERVE = Script(
    """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(oldest[2] + ARGV[2] - ARGV[1])
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2]))
return '0'
"""
)

# KEYS: sets; ARGV: now, window, then one limit per key. The seconds until
# every set is under its limit again (0: under all of them).
WAIT = Script(
    """
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1] - ARGV[2])
  local count = redis.call('ZCARD', key)
  local limit = tonumber(ARGV[i + 2])
  if count >= limit then
    local edge = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, edge[2] + ARGV[2] - ARGV[1])
  end
end
return tostring(wait)
"""
)

# KEYS[1] room set, KEYS[2] its version, KEYS[3] the shard's rooms with presence;
# ARGV: member, now, expires at, user prefix ("<pk>:"), key ttl, room id.
# Returns {1 if the user came online else 0, version, {"<pk>:<username>"
# online, the user included}, {expired users now gone}}.
PRESENCE_JOIN = Script(
    """
local version = redis.call('INCR', KEYS[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local prefix = ARGV[4]
local was_online = 0
local live_users = {}
for _, member in ipairs(live) do
  local user = string.match(member, '^([^:]*:[^:]*):')
  live_users[user] = true
  if string.sub(member, 1, #prefix) == prefix then was_online = 1 end
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[3], 'LT', ARGV[3], ARGV[6])
live_users[string.match(ARGV[1], '^([^:]*:[^:]*):')] = true
local online = {}
for user, _ in pairs(live_users) do table.insert(online, user) end
local ghosts = {}
local seen = {}
for _, member in ipairs(gone) do
  local user = string.match(member, '^([^:]*:[^:]*):')
  local mine = string.sub(member, 1, #prefix) == prefix
  if user and not live_users[user] and not seen[user] and not mine then
    seen[user] = true
    table.insert(ghosts, user)
  end
end
return {1 - was_online, version, online, ghosts}
"""
)

# KEYS[1] room set, KEYS[2] its version; ARGV: member, now, user prefix.
# Returns {1 if the user went offline else 0, version}.
PRESENCE_LEAVE = Script(
    """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 0 then return {0, 0} end
local version = redis.call('INCR', KEYS[2])
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')
for _, member in ipairs(live) do
  if string.sub(member, 1, #ARGV[3]) == ARGV[3] then return {0, version} end
end
return {1, version}
"""
)

# KEYS[1] room set, KEYS[2] its version; ARGV: now. Removes expired sockets;
# returns {version, the users now gone...}.
PRESENCE_SWEEP = Script(
    """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #gone == 0 then return {0} end
local version = redis.call('INCR', KEYS[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local live_users = {}
for _, member in ipairs(live) do
  live_users[string.match(member, '^([^:]*:[^:]*):')] = true
end
local result = {version}
for _, member in ipairs(gone) do
  local user = string.match(member, '^([^:]*:[^:]*):')
  if user and not live_users[user] then
    live_users[user] = true
    table.insert(result, user)
  end
end
return result
"""
)

# KEYS[1] the shard's rooms with presence (room id -> no later than its first
# expiry); ARGV: now, the prefix of presence keys, that of presence versions,
# how many rooms at most. Sweeps every room due, as PRESENCE_SWEEP does (the
# rooms' keys are derived here, on this shard, where every room of the index
# lives), and scores each again by its earliest entry, or drops it when it has
# none. Returns {room id, version, count, users gone...} for each room where a
# user went offline.
PRESENCE_SWEEP_DUE = Script(
    """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local result = {}
for _, room in ipairs(due) do
  local key = ARGV[2] .. room
  local gone = redis.call('ZRANGEBYSCORE', key, '-inf', ARGV[1])
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
    local live = redis.call('ZRANGE', key, 0, -1)
    local live_users = {}
    for _, member in ipairs(live) do
      live_users[string.match(member, '^([^:]*:[^:]*):')] = true
    end
    local users = {}
    for _, member in ipairs(gone) do
      local user = string.match(member, '^([^:]*:[^:]*):')
      if user and not live_users[user] then
        live_users[user] = true
        table.insert(users, user)
      end
    end
    if #users > 0 then
      local version = redis.call('INCR', ARGV[3] .. room)
      table.insert(result, room)
      table.insert(result, version)
      table.insert(result, #users)
      for _, user in ipairs(users) do table.insert(result, user) end
    end
  end
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', KEYS[1], room)
  else
    redis.call('ZADD', KEYS[1], first[2], room)
  end
end
return result
"""
)

# KEYS[1] a group; ARGV: now, the group's cutoff (members older leave), the
# layer's prefix, 12 random bytes, the message (msgpack), the queues' expiry,
# their cutoff (entries older are gone), the capacity. Every member worker's
# queue on this shard (prefix .. "specific.<worker>!") gets one entry naming
# its member channels: head .. "a,b" .. "\n" .. message. Returns the queues
# refused over capacity. The queue keys are derived here, on the group's own
# shard, where every worker has a queue (chat/platform/layers.py).
GROUP_SEND = Script(
    """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[2])
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local channels = {}
local order = {}
for _, channel in ipairs(members) do
  local bang = string.find(channel, '!', 1, true)
  local queue = bang and string.sub(channel, 1, bang) or channel
  if channels[queue] == nil then
    channels[queue] = {}
    table.insert(order, queue)
  end
  table.insert(channels[queue], channel)
end
local refused = {}
local capacity = tonumber(ARGV[8])
for _, queue in ipairs(order) do
  local key = ARGV[3] .. queue
  redis.call('ZREMRANGEBYSCORE', key, 0, ARGV[7])
  if redis.call('ZCARD', key) < capacity then
    local names = table.concat(channels[queue], ',')
    redis.call('ZADD', key, ARGV[1], ARGV[4] .. names .. '\\n' .. ARGV[5])
    redis.call('EXPIRE', key, ARGV[6])
  else
    table.insert(refused, queue)
  end
end
return refused
"""
)

# KEYS[1] a worker's queue; ARGV: the entry, now, the cutoff, the expiry, the
# capacity. 1 if refused over capacity, else 0.
QUEUE_ONE = Script(
    """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then return 1 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 0
"""
)

# KEYS[1] the live workers, KEYS[2] this worker's "reaped" mark (both on the
# registry's shard); ARGV: worker, now. 1 if another worker took this one for
# dead and reaped its channels meanwhile (its sockets are deaf), else 0.
WORKER_HEARTBEAT = Script(
    """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('DEL', KEYS[2]) == 1 then return 1 end
return 0
"""
)

# KEYS: group keys of one shard; ARGV[1]: the channel prefix of a dead worker
# ("specific.<its client prefix>!"). Removes its channels from every group;
# returns how many it removed.
REAP_GROUPS = Script(
    """
local removed = 0
local prefix = ARGV[1]
for _, key in ipairs(KEYS) do
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.sub(member, 1, #prefix) == prefix then
      removed = removed + redis.call('ZREM', key, member)
    end
  end
end
return removed
"""
)
