-- ARGV 6 id, 7 its short name, 8 uid, 9 '1' to only look. On Cluster, an adopt's step for one id
-- the request reached in another slot than `uid`: 'conflict' when it reaches a live session
-- other than `uid` that holds a value; otherwise 'ok', after ending the (empty) session it
-- reaches, unless only looking.
local other = find(ARGV[6], ARGV[7])
if not other or other == ARGV[8] or not live(other) then return 'ok' end
if value_count(other) > 0 then return 'conflict' end
if ARGV[9] ~= '1' then kill(other) end
return 'ok'
