-- ARGV 6 uid.
kill(ARGV[6])
return 1
