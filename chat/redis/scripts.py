"""Every Lua script the site runs in Redis. Each touches the keys of one shard only:
its KEYS are a room's, a user's, a group's, or one key alone (chat.redis.routing)."""

# KEYS[1] the user's set; ARGV: now, window, limit, member.
# Returns 0 and adds the member, or the seconds until the oldest entry leaves.
RESERVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(oldest[2] + ARGV[2] - ARGV[1])
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2]))
return '0'
"""

# KEYS: sets; ARGV: now, window, then one limit per key. The seconds until
# every set is under its limit again (0: under all of them).
WAIT = """
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

# KEYS[1] room set, KEYS[2] its version; ARGV: member, now, expires at, user
# prefix ("<pk>:"), key ttl. Returns {1 if the user came online else 0, version,
# {"<pk>:<username>" online, the user included}, {expired users now gone}}.
PRESENCE_JOIN = """
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

# KEYS[1] room set, KEYS[2] its version; ARGV: member, now, user prefix.
# Returns {1 if the user went offline else 0, version}.
PRESENCE_LEAVE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 0 then return {0, 0} end
local version = redis.call('INCR', KEYS[2])
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')
for _, member in ipairs(live) do
  if string.sub(member, 1, #ARGV[3]) == ARGV[3] then return {0, version} end
end
return {1, version}
"""

# KEYS[1] room set, KEYS[2] its version; ARGV: now. Removes expired sockets;
# returns {version, the users now gone...}.
PRESENCE_SWEEP = """
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

# channels-redis' group_send script, returning the keys it refused (over
# capacity) instead of only their number, and dropping expired messages itself
# (channels-redis sends a pipeline for that first).
GROUP_SEND = """
local refused = {}
local now = ARGV[#ARGV - 2]
local expiry = ARGV[#ARGV - 1]
local expired = ARGV[#ARGV]
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, expired)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        table.insert(refused, KEYS[i])
    end
end
return refused
"""

# KEYS[1] the live workers, KEYS[2] this worker's "reaped" mark (both on the
# registry's shard); ARGV: worker, now. 1 if another worker took this one for
# dead and reaped its channels meanwhile (its sockets are deaf), else 0.
WORKER_HEARTBEAT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('DEL', KEYS[2]) == 1 then return 1 end
return 0
"""

# KEYS: group keys of one shard; ARGV[1]: the channel prefix of a dead worker
# ("specific.<its client prefix>!"). Removes its channels from every group;
# returns how many it removed.
REAP_GROUPS = """
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
