-- ARGV 6 jti, 7 claim (unique to the call). Marks the record taken by this claim, whatever it
-- says, then returns its uid if not expired at `now`. A record already taken answers nil, except
-- to the same claim: the same call sent again after its connection dropped (its first reply may
-- have been lost) gets the same answer, and no other call ever gets the uid. The taken record
-- stays until its own expiry (the session's), or until `kill` deletes it with its session.
local k = hkey(ARGV[6])
local f = redis.call('HMGET', k, 'u', 'e', 't')
if not f[1] then return false end
if f[3] then
  if f[3] ~= ARGV[7] then return false end
else
  redis.call('HSET', k, 't', ARGV[7])
end
local e = tonumber(f[2])
if not e or now >= e then return false end
return f[1]
