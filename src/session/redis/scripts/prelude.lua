-- Shared by every script. ARGV: 1 prefix, 2 now, 3 idle_ms, 4 absolute_ms, 5 '1' when names
-- from before slot tags are looked up too (not on Cluster: their keys are in other slots); then
-- the script's own. Where a session's keys are: `base(uid)` (the doc of `session::redis`).
local P = ARGV[1]
local now = tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local absolute = tonumber(ARGV[4])
local legacy = ARGV[5] == '1'

-- The slot tag of a uid or jti ('<4 characters>.<hex>'), or nil for a name from before tags.
local function tagof(name)
  return string.match(name, '^([%w_%-][%w_%-][%w_%-][%w_%-])%.')
end
local function base(name)
  local t = tagof(name)
  if t then return P .. '{' .. t .. '}' end
  return P
end
local function skey(uid) return base(uid) .. 's:' .. uid end
local function idskey(uid) return base(uid) .. 'ids:' .. uid end
local function hskey(uid) return base(uid) .. 'hs:' .. uid end
local function hkey(jti) return base(jti) .. 'h:' .. jti end
-- An id as the store names it: '<tag>:<hash>', or '<hash>' (a member of an ids set from before
-- tags); its key.
local function idkey(m)
  local t, h = string.match(m, '^([^:]+):(%x+)$')
  if t then return P .. '{' .. t .. '}id:' .. h end
  return P .. 'id:' .. m
end

-- The uid id `m` reaches and the key that says so; nil when none.
local function find(m)
  local k = idkey(m)
  local uid = redis.call('GET', k)
  if not uid and legacy then
    local h = string.match(m, ':(%x+)$')
    if h then
      k = P .. 'id:' .. h
      uid = redis.call('GET', k)
    end
  end
  if uid then return uid, k end
  return nil
end

-- Deletes every id and handoff record that leads to session `uid`, not the session itself.
local function cut(uid)
  local ids, hs = idskey(uid), hskey(uid)
  for _, m in ipairs(redis.call('SMEMBERS', ids)) do redis.call('DEL', idkey(m)) end
  for _, j in ipairs(redis.call('SMEMBERS', hs)) do redis.call('DEL', hkey(j)) end
  redis.call('DEL', ids, hs)
end

-- Deletes session `uid` and every key that leads to it (an identity link, in its subject's own
-- slot, is not reachable from here: it leads to a dead session, is dropped when next followed,
-- and expires by the session's absolute deadline anyway).
local function kill(uid)
  cut(uid)
  redis.call('DEL', skey(uid))
end

-- If session `uid` is live at `now`: its created_at and last_seen, unchanged. Otherwise false; a
-- dead one is deleted on the spot (dead is dead, whatever Redis's TTL says).
local function live(uid)
  local f = redis.call('HMGET', skey(uid), 'c', 'l')
  if not f[1] then return false end
  local c, l = tonumber(f[1]), tonumber(f[2])
  if not c or not l then error('corrupt session record') end
  if now >= math.min(l + idle, c + absolute) then
    kill(uid)
    return false
  end
  return c, l
end

-- If session `uid` is live at `now`: sets last_seen to now, slides its expiry, returns created_at.
-- With `step`, only when last_seen is at least that old (a read: see `Timeouts::touch_due`).
-- Otherwise false, as `live`.
local function touch(uid, step)
  local c, l = live(uid)
  if not c then return false end
  if step and now - l < step then return c end
  local s = skey(uid)
  redis.call('HSET', s, 'l', ARGV[2])
  redis.call('PEXPIRE', s, math.min(idle, c + absolute - now))
  return c
end

-- How many values session `uid` holds (its `v:` fields).
local function value_count(uid)
  local n = 0
  for _, f in ipairs(redis.call('HKEYS', skey(uid))) do
    if string.sub(f, 1, 2) == 'v:' then n = n + 1 end
  end
  return n
end

-- Sets `field` to `value` in the live session `uid` (created at `c`), touching it in the same
-- HSET, unless the field is new and the session already holds `max` values: then false, nothing
-- written.
local function put(uid, c, field, value, max)
  local s = skey(uid)
  if redis.call('HEXISTS', s, field) == 0 and value_count(uid) >= max then return false end
  redis.call('HSET', s, 'l', ARGV[2], field, value)
  redis.call('PEXPIRE', s, math.min(idle, c + absolute - now))
  return true
end

-- Makes id `m` reach the live session `uid` (created at `c`) until its absolute deadline.
local function link(uid, m, c)
  local ttl = c + absolute - now
  local k = idkey(m)
  local old = redis.call('GET', k)
  if old and old ~= uid then redis.call('SREM', idskey(old), m) end
  redis.call('SET', k, uid, 'PX', ttl)
  local ids = idskey(uid)
  redis.call('SADD', ids, m)
  redis.call('PEXPIRE', ids, ttl)
end
