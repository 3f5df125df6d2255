-- ARGV 6 uid, 7 key. Returns HGETALL or nil.
if not touch(ARGV[6]) then return false end
redis.call('HDEL', skey(ARGV[6]), 'v:' .. ARGV[7])
return redis.call('HGETALL', skey(ARGV[6]))
