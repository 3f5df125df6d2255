-- ARGV 6 uid, 7 touch step (ms). The live session's HGETALL, touched as `load` touches it, or
-- nil (a dead one deleted on the spot, as `live` does).
if not touch(ARGV[6], tonumber(ARGV[7])) then return false end
return redis.call('HGETALL', skey(ARGV[6]))
