-- ARGV 6 id, 7 key, 8 value, 9 max values, 10 touch step (ms): `LOAD` then `SET_VALUE` on the
-- session found, in one step. Returns {'done', uid, HGETALL...}, {'full'} (nothing written; only
-- `LOAD`'s touch) or nil (the id reaches no live session).
local uid, k = find(ARGV[6])
if not uid then return false end
local c = live(uid)
if not c then
  redis.call('DEL', k)
  return false
end
if not put(uid, c, 'v:' .. ARGV[7], ARGV[8], tonumber(ARGV[9])) then
  touch(uid, tonumber(ARGV[10]))
  return {'full'}
end
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, uid)
table.insert(r, 1, 'done')
return r
