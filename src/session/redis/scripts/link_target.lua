-- ARGV 6 uid. Touches the live session as a write does, and returns the ms left until its
-- absolute deadline (how long a link to it may live); 0 when it is missing or expired.
local c = touch(ARGV[6])
if not c then return 0 end
return c + absolute - now
