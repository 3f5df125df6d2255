-- ARGV 6 id, 7 its short name, 8 touch step (ms). Returns {uid, HGETALL...} or nil.
local uid, k = find(ARGV[6], ARGV[7])
if not uid then return false end
if not touch(uid, tonumber(ARGV[8])) then
  redis.call('DEL', k)
  return false
end
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, uid)
return r
