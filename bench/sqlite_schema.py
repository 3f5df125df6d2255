#!/usr/bin/env python3
"""Point lookups by id (the broker's own join) on a SQLite file of 10^6 sessions, schema step 2
against step 3 (WITHOUT ROWID), alternating rounds in one process; also times step 3's rebuild.

Reads the schema steps from src/session/sqlite/schema.rs. Writes into the current directory (v2.db,
v3.db, about 1 GB with their WAL): run it in a temp dir. `python3 bench/sqlite_schema.py`.
"""
import random, re, shutil, sqlite3, statistics, time
from pathlib import Path

src = open(Path(__file__).resolve().parent.parent / 'src/session/sqlite/schema.rs').read()
steps = re.search(r'const MIGRATIONS: &\[&str\] = &\[(.*?)\n\];', src, re.S).group(1)
steps = re.findall(r'"\n(.*?)\n",', steps, re.S)
N = 1_000_000
db = sqlite3.connect('v2.db'); db.execute('PRAGMA journal_mode=WAL')
db.executescript(steps[0]); db.executescript(steps[1])
t=time.time()
db.executescript(f"""BEGIN;
CREATE TEMP TABLE u AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{N})
 SELECT i, lower(hex(randomblob(16))) AS uid, lower(hex(randomblob(32))) AS h FROM c;
INSERT INTO sessions SELECT uid, 1, 1, 9999999999999, '{{"chat":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}' FROM u;
INSERT INTO session_ids SELECT h, uid FROM u;
COMMIT;""")
hs = [r[0] for r in db.execute('SELECT h FROM u ORDER BY random() LIMIT 20000')]
db.execute('PRAGMA wal_checkpoint(TRUNCATE)'); db.close()
print(f'fill {time.time()-t:.1f}s', flush=True)
shutil.copy('v2.db','v3.db')
# As `migrate` runs it: foreign keys off, one transaction.
db = sqlite3.connect('v3.db', isolation_level=None); db.execute('PRAGMA foreign_keys=OFF')
t=time.time(); db.executescript('BEGIN;\n' + steps[2] + '\nCOMMIT;'); db.execute('PRAGMA wal_checkpoint(TRUNCATE)')
print(f'step 3 on {N:,} sessions: {time.time()-t:.1f}s', flush=True); db.close()
Q = "SELECT s.uid, s.created_at, s.last_seen, s.vals FROM session_ids i JOIN sessions s ON s.uid = i.uid WHERE i.id_hash = ? AND s.expires_at > ?"
conns = {n: sqlite3.connect(f'file:{n}.db?mode=ro', uri=True) for n in ('v2','v3')}
res = {'v2': [], 'v3': []}
for rnd in range(6):
    for n in (('v2','v3') if rnd%2 else ('v3','v2')):
        c = conns[n]; keys = random.choices(hs, k=100000)
        t=time.perf_counter()
        for k in keys:
            assert c.execute(Q, (k, 0)).fetchone() is not None
        res[n].append(100000/(time.perf_counter()-t))
for n,v in res.items(): print(n, 'lookups/s', sorted(int(x) for x in v))
print('ratio v3/v2 median', round(statistics.median(res['v3'])/statistics.median(res['v2']),2))
