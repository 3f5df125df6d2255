-- ARGV 6 uid, 7 id, 8 its short name.
local uid = ARGV[6]
redis.call('HSET', skey(uid), 'c', ARGV[2], 'l', ARGV[2])
redis.call('PEXPIRE', skey(uid), math.min(idle, absolute))
link(uid, ARGV[7], ARGV[8], now)
return 1
