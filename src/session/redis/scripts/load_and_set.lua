-- ARGV 6 id, 7 its short name, 8 key, 9 value, 10 max values, 11 touch step (ms): `LOAD` then
-- `SET_VALUE` on the session found, in one step. Returns {'done', uid, HGETALL...}, {'full'}
-- (nothing written; only `LOAD`'s touch) or nil (the id reaches no live session).
local uid, k = find(ARGV[6], ARGV[7])
if not uid then return false end
local c = live(uid)
if not c then
  redis.call('DEL', k)
  return false
end
if not put(uid, c, 'v:' .. ARGV[8], ARGV[9], tonumber(ARGV[10])) then
  touch(uid, tonumber(ARGV[11]))
  return {'full'}
end
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, uid)
table.insert(r, 1, 'done')
return r
