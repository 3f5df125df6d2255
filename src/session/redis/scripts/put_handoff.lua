-- ARGV 6 jti, 7 uid, 8 expires_at. The record lives in Redis as long as its session could (it is
-- useless after that); `take` judges `expires_at` by the app clock. A record for a session that
-- is already gone is not written: it could never be redeemed.
local ttl = redis.call('PTTL', skey(ARGV[7]))
if ttl == -2 then return 0 end
if ttl < 0 then ttl = absolute end
local k = hkey(ARGV[6])
redis.call('HSET', k, 'u', ARGV[7], 'e', ARGV[8])
redis.call('PEXPIRE', k, ttl)
local hs = hskey(ARGV[7])
redis.call('SADD', hs, ARGV[6])
if redis.call('PTTL', hs) < ttl then redis.call('PEXPIRE', hs, ttl) end
return 1
