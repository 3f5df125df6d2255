-- ARGV 6 uid, 7 key, 8 value, 9 max values. Returns {'done', HGETALL...}, {'full'} (nothing
-- written, nothing touched) or nil (missing).
local uid = ARGV[6]
local c = live(uid)
if not c then return false end
if not put(uid, c, 'v:' .. ARGV[7], ARGV[8], tonumber(ARGV[9])) then return {'full'} end
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, 'done')
return r
