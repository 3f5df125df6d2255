-- KEYS 1 a subject's identity link; ARGV 6 uid, 7 ms until that session's absolute deadline
-- (the link never outlives the session's last possible moment).
redis.call('SET', KEYS[1], ARGV[6], 'PX', ARGV[7])
return 1
