-- ARGV 6 uid, 7 id, 8 its short name, then each id the request reached and its short name (9 and
-- 10, 11 and 12...; on Cluster only those in `uid`'s slot: see `adopt`). Returns {'done',
-- HGETALL...}, {'conflict'} or nil (missing); only 'done' changes anything.
local uid = ARGV[6]
if not live(uid) then return false end
local others, seen = {}, {}
for i = 9, #ARGV - 1, 2 do
  local other = find(ARGV[i], ARGV[i + 1])
  if other and other ~= uid and not seen[other] and live(other) then
    if value_count(other) > 0 then return {'conflict'} end
    seen[other] = true
    table.insert(others, other)
  end
end
for _, other in ipairs(others) do kill(other) end
link(uid, ARGV[7], ARGV[8], touch(uid))
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, 'done')
return r
