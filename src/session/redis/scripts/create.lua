-- ARGV 6 uid, 7 id.
local uid = ARGV[6]
redis.call('HSET', skey(uid), 'c', ARGV[2], 'l', ARGV[2])
redis.call('PEXPIRE', skey(uid), math.min(idle, absolute))
link(uid, ARGV[7], now)
return 1
