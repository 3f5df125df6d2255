-- KEYS 1 a subject's identity link. The uid it holds, or nil.
return redis.call('GET', KEYS[1])
