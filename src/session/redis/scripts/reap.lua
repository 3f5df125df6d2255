-- KEYS: session hashes found by `SCAN` (on Cluster one at a time: each is in its own slot).
-- Deletes those dead at `now`; gives back an expiry to a live one that has lost it. Returns how
-- many sessions went.
local n = 0
for _, s in ipairs(KEYS) do
  local f = redis.call('HMGET', s, 'c', 'l')
  local c, l = tonumber(f[1]), tonumber(f[2])
  if c and l then
    local ends = math.min(l + idle, c + absolute)
    if now >= ends then
      kill(string.match(s, 's:([^:]*)$'))
      n = n + 1
    elseif redis.call('PTTL', s) == -1 then
      redis.call('PEXPIRE', s, ends - now)
    end
  end
end
return n
