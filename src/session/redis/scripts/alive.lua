-- ARGV 6 uid. 1 when the session is live, else 0.
if live(ARGV[6]) then return 1 end
return 0
