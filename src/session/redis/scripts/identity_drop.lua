-- KEYS 1 a subject's identity link; ARGV 6 the uid it was found to lead to, dead. Deleted only
-- while it still names that uid: a link made meanwhile to a live session stays.
if redis.call('GET', KEYS[1]) == ARGV[6] then redis.call('DEL', KEYS[1]) end
return 1
