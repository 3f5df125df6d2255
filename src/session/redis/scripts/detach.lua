-- ARGV 6 uid. A `forget()`: every id and handoff record of the session deleted; the session
-- itself (values, expiry) stays, for its identity links to find.
cut(ARGV[6])
return 1
