#!/usr/bin/env python3
"""Explicit-state check of the lower crates, `storage/src`, `query/src` and `http/src` (issue 15).

The same rule as `.ci/statics.py` for `engine/src` (which this reuses): a `static` or a
`thread_local!` is a hidden owner that two stores, two servers or two `App`s in one process
would share, and that no signature shows. A switch the engine decides (read tracking, the
`--dev` SQL log) is an option of the value that uses it (`StoreOptions`); what a call
produced (the statements a read ran, a volatile read of a request) is returned to, or kept
by, its caller. So this fails on every `thread_local!` and every `static` of a type that can
change after it is first set, unless ALLOWED below names it with the reason it may stay.

Usage: `.ci/statics_lower.py` (check), `.ci/statics_lower.py --list` (print every flagged static).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import statics  # noqa: E402

CRATES = ["storage/src", "query/src", "http/src"]

# (file under the workspace root, static's name): why it may stay. Keep small.
ALLOWED = {
    # compiled regular expressions and fixed tables, built once from constants
    ("storage/src/collections/index.rs", "RE"): "index definition patterns",
    ("storage/src/collections/view.rs", "RE"): "view query patterns",
    ("storage/src/collections/validate.rs", "RE"): "name pattern",
    ("storage/src/collections/model.rs", "T"): "PocketBase's default auth templates",
    ("query/src/fuzzing.rs", "S"): "the fuzz targets' fixed schema",
    # a resource started on first use and immutable once built
    ("storage/src/files/s3.rs", "RT"): "handle of the S3 client's runtime thread, started "
    "on first use; every store's buckets share it as they would share a connection pool",
    # identity, not configuration: no behaviour depends on its value beyond inequality
    ("storage/src/collections/snapshot.rs", "NEXT_VERSION"): "identities of collections "
    "snapshots: caches only ask whether two differ, and one counter keeps any two snapshots "
    "of the process apart, whichever store built them; it configures nothing",
    # the process's allocator, which is process-wide by nature
    ("storage/src/memory.rs", "HOOK"): "the global allocator's purge (mimalloc's `mi_collect`), "
    "installed once by `main` before any store opens; set once, never changed",
    # derived caches of pure functions
    ("http/src/date.rs", "CACHE"): "the `Date` header of the current second, formatted once "
    "a second per thread: a memo of a pure function of the clock",
    # a bridge SQLite's callback needs (see the comment on `Recorder`)
    ("storage/src/deps.rs", "RECORDER"): "statements started while a `deps::recording` "
    "runs: SQLite's trace callback is a plain `fn` in rusqlite 0.37 and cannot be handed "
    "the recording; empty and off outside one",
}


def main():
    found = []
    root = statics.ROOT
    for crate in CRATES:
        for rel, var, why in statics.flagged(os.path.join(root, crate)):
            found.append((f"{crate}/{rel}", var, why))
    if "--list" in sys.argv:
        for rel, var, why in found:
            tag = "allowed" if (rel, var) in ALLOWED else "NEW"
            print(f"{tag:8} {rel}: {var}: {why}")
        return 0
    status = 0
    for rel, var, why in found:
        if (rel, var) not in ALLOWED:
            print(f"statics: {rel}: `{var}` ({why}) is mutable state outside an owner; make "
                  "it an option or field of the value that uses it, or a value the call returns")
            status = 1
    for rel, var in sorted(set(ALLOWED) - {(rel, var) for rel, var, _ in found}):
        print(f"statics: {rel}: `{var}` is gone; take it off ALLOWED in .ci/statics_lower.py")
        status = 1
    if status == 0:
        print(f"statics (storage, query, http): ok ({len(found)} flagged statics, all allowed)")
    return status


if __name__ == "__main__":
    sys.exit(main())
