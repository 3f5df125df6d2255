-- ARGV 6 uid, 7 id, 8 its short name. Returns 1 when bound, 0 when the session is gone.
local c = touch(ARGV[6])
if not c then return 0 end
link(ARGV[6], ARGV[7], ARGV[8], c)
return 1
