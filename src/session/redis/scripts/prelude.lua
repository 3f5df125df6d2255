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
local function hskey(uid) return base(uid) .. 'hs:' .. uid end
local function hkey(jti) return base(jti) .. 'h:' .. jti end
-- An id comes as two arguments: its member '<tag>:<hash>' (hex; its name in the layout before)
-- and its short name '<tag>:<h>', where <h> is the first 128 bits of the hash in base64url (22
-- characters; 128 bits of a SHA-256 of a 256-bit secret: no two ids meet), computed by the
-- caller (`short_name` in mod.rs: in Lua it cost more than the rest of a read). Its key is
-- `P{<tag>}i:<h>` and the session hash lists it as field 'i<tag>:<h>': short enough for Redis's
-- compact encodings (listpack values up to hash-max-listpack-value, 64 bytes; fewer allocator
-- size classes per key). Tags are 4 characters (`TAG_LEN`).
local function idkey(s) return P .. '{' .. string.sub(s, 1, 4) .. '}i:' .. string.sub(s, 6) end
local function idfield(s) return 'i' .. s end
-- Where ids were before (a compatible read path, no migration): the key named by the whole hash
-- (`P{T}id:<hash>`, untagged `P id:<hash>`), and a set `P{T}ids:<uid>` of a session's ids.
local function oldidkey(m)
  local t, h = string.match(m, '^([^:]+):(%x+)$')
  if t then return P .. '{' .. t .. '}id:' .. h end
  return P .. 'id:' .. m
end
local function oldidskey(uid) return base(uid) .. 'ids:' .. uid end

-- The uid id `m` (short name `s`) reaches and the key that says so; nil when none. The layouts
-- before are only looked at when the new key is missing.
local function find(m, s)
  local k = idkey(s)
  local uid = redis.call('GET', k)
  if uid then return uid, k end
  k = oldidkey(m)
  uid = redis.call('GET', k)
  if uid then return uid, k end
  if legacy then
    local h = string.match(m, ':(%x+)$')
    if h then
      k = P .. 'id:' .. h
      uid = redis.call('GET', k)
      if uid then return uid, k end
    end
  end
  return nil
end

-- Deletes every id (either layout) and handoff record that leads to session `uid`, not the
-- session itself: its values and times stay (a `forget()`, see detach.lua).
local function cut(uid)
  local s, ids, hs = skey(uid), oldidskey(uid), hskey(uid)
  for _, f in ipairs(redis.call('HKEYS', s)) do
    local t, h = string.match(f, '^i([^:]+):([%w_%-]+)$')
    if t then
      redis.call('DEL', P .. '{' .. t .. '}i:' .. h)
      redis.call('HDEL', s, f)
    elseif string.match(f, '^i[%w_%-]+$') then
      redis.call('DEL', P .. 'i:' .. string.sub(f, 2))
      redis.call('HDEL', s, f)
    end
  end
  for _, m in ipairs(redis.call('SMEMBERS', ids)) do redis.call('DEL', oldidkey(m)) end
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

-- Makes id `m` (short name `s`) reach the live session `uid` (created at `c`) until its absolute
-- deadline. A key of `m` in an old layout goes: the new one answers first, and the old one could
-- outlive an `end`.
local function link(uid, m, s, c)
  local ttl = c + absolute - now
  local f = idfield(s)
  local old, at = find(m, s)
  local k = idkey(s)
  if old and old ~= uid then
    redis.call('HDEL', skey(old), f)
    redis.call('SREM', oldidskey(old), m)
  end
  if at and at ~= k then redis.call('DEL', at) end
  redis.call('SET', k, uid, 'PX', ttl)
  redis.call('HSET', skey(uid), f, '')
end
