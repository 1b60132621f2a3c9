#!/usr/bin/env python3
"""Which b-trees a Herald database's recent commits wrote, read from its WAL.

Each WAL frame carries the number of the page it writes, and a commit ends at a frame with a
non-zero database size. This script groups the frames of the WAL beside DB into commits,
counts each commit's distinct pages, and names each page's table or index with SQLite's
`dbstat` (so the count per b-tree and commit shows what a write costs in pages).

Usage, on a copy taken while the WAL still holds the commits of interest (for example after
`kill -9` of a server under `herald-bench pairs`, before anything checkpoints it):

    cp /tmp/hb/herald.db* /tmp/copy/ && scripts/wal_pages.py /tmp/copy/herald.db [LAST]

LAST: only the last LAST commits (default: all in the WAL). Opening the copy with SQLite may
replay and checkpoint its WAL, so the frames are read first. Standard library only.
"""

import collections
import sqlite3
import struct
import sys


def commits(wal: bytes) -> list[list[int]]:
    """The page numbers of each commit in the WAL's current generation (its salt)."""
    if len(wal) < 32:
        return []
    page_size = struct.unpack(">I", wal[8:12])[0]
    salt = wal[16:24]
    out, current, off = [], [], 32
    while off + 24 + page_size <= len(wal):
        pgno, db_size = struct.unpack(">II", wal[off : off + 8])
        if wal[off + 8 : off + 16] != salt:
            break  # a frame left from an earlier generation: the valid log ends here
        current.append(pgno)
        if db_size:
            out.append(current)
            current = []
        off += 24 + page_size
    return out


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    db = sys.argv[1]
    with open(db + "-wal", "rb") as f:
        found = commits(f.read())
    if not found:
        sys.exit("no complete commit in the WAL")
    if len(sys.argv) > 2:
        found = found[-int(sys.argv[2]) :]
    con = sqlite3.connect(db)
    owner = {page: name for name, page in con.execute("SELECT name, pageno FROM dbstat")}
    per_tree = collections.Counter()
    for pages in found:
        for p in set(pages):
            per_tree[owner.get(p, "(free or new)")] += 1
    n = len(found)
    print(f"{n} commits, {sum(map(len, found))} frames, {sum(per_tree.values()) / n:.1f} distinct pages per commit")
    for name, count in per_tree.most_common():
        print(f"{count / n:8.1f}  {name}")


if __name__ == "__main__":
    main()
