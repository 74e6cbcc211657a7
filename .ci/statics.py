#!/usr/bin/env python3
"""Explicit-state check of `engine/src` (issue 15, item 4).

The engine's state has owners: `state::Core` (per process, the domain), `ctx::Shared` (per
process, the API layer), `records::db::Db` and `ctx::AppCtx` (per worker). A `static` or a
`thread_local!` is a hidden owner: two `App`s in one process (a test) would share it, and
nothing in a signature says a function reads it. So statics are kept for immutable,
derived-once constants only (a compiled regex, the MIME table, a fixed schema).

This fails on every `thread_local!` and every `static` whose type can change after it is
first set (a `Mutex`, `RwLock`, `Atomic*`, `Cell`, `RefCell`, `OnceCell`, `OnceLock` or
`LazyLock`) in `engine/src`, unless it is listed in ALLOWED below (immutable once built) or
in DEBT (mutable state still to be moved; a ratchet: an entry that no longer exists fails
too, so it is taken off in the commit that moves it).

Usage: `.ci/statics.py` (check), `.ci/statics.py --list` (print every flagged static).
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "engine", "src")

# (file under engine/src, static's name): statics that never change once built. Keep small.
ALLOWED = {
    # compiled regular expressions (a `Regex` is immutable; its match cache is its own)
    ("records/validate.rs", "RE"): "email, URL and file name patterns",
    ("settings/rules.rs", "RE"): "settings validation patterns",
    ("settings/model.rs", "RULE_LABEL"): "rule label pattern",
    ("apis/backups.rs", "RE"): "backup name pattern",
    ("apis/settings.rs", "PEM"): "PEM block pattern",
    # fixed tables and schemas, built from constants on first use
    ("public.rs", "TABLE"): "the MIME table",
    ("apis/collections.rs", "SCHEMA"): "the fixed filter schema of `_collections`",
    ("apis/logs.rs", "SCHEMA"): "the fixed filter schema of `_logs`",
    ("logs/mod.rs", "SQL"): "the log table's fixed SQL",
    ("fuzzing.rs", "C"): "the fuzz targets' fixed collections",
    # test-only counters (cfg(test): not in the product)
    ("complexity_tests.rs", "ALLOCS"): "allocation counter of the complexity tests",
    ("complexity_tests.rs", "BYTES"): "allocation counter of the complexity tests",
    ("records/files.rs", "SNIFFS"): "sniff counter of a batch test",
}

# Mutable state not moved to an owner yet (issue 15 item 4). Only ever shrinks.
DEBT: set = set()

MUTABLE = re.compile(r"\b(Mutex|RwLock|Atomic[A-Za-z0-9]*|Cell|RefCell|OnceCell|OnceLock|LazyLock)\b")
# `static NAME: TYPE =` (not `&'static`); the type runs to the `=`
STATIC = re.compile(r"(?<![&'\w])static\s+(?:mut\s+)?([A-Z_][A-Z0-9_]*)\s*:\s*([^=;]+)[=;]")
THREAD_LOCAL = re.compile(r"thread_local!\s*\{")
COMMENT = re.compile(r"//[^\n]*")


def block_end(text, open_brace):
    """Index just past the `}` matching the `{` at `open_brace`."""
    depth = 0
    for i in range(open_brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def flagged(src=SRC):
    """(file, name, why) of every thread-local and every static of a mutable type in `src`."""
    out = []
    for dirpath, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            with open(path, encoding="utf-8") as f:
                text = COMMENT.sub("", f.read())
            local = []
            for m in THREAD_LOCAL.finditer(text):
                local.append((m.start(), block_end(text, m.end() - 1)))
            for m in STATIC.finditer(text):
                var, ty = m.group(1), " ".join(m.group(2).split())
                if any(a <= m.start() < b for a, b in local):
                    out.append((rel, var, f"thread_local {ty}"))
                elif MUTABLE.search(ty):
                    out.append((rel, var, f"static {ty}"))
    return out


def main():
    found = flagged()
    if "--list" in sys.argv:
        for rel, var, why in found:
            tag = "allowed" if (rel, var) in ALLOWED else "debt" if (rel, var) in DEBT else "NEW"
            print(f"{tag:8} {rel}: {var}: {why}")
        return 0
    status = 0
    seen = {(rel, var) for rel, var, _ in found}
    for rel, var, why in found:
        if (rel, var) not in ALLOWED and (rel, var) not in DEBT:
            print(f"statics: engine/src/{rel}: `{var}` ({why}) is mutable state outside an owner; "
                  "make it a field of state::Core, ctx::Shared, records::db::Db or ctx::AppCtx")
            status = 1
    for rel, var in sorted(DEBT - seen):
        print(f"statics: engine/src/{rel}: `{var}` is gone; take it off DEBT in .ci/statics.py")
        status = 1
    for rel, var in sorted(set(ALLOWED) - seen):
        print(f"statics: engine/src/{rel}: `{var}` is gone; take it off ALLOWED in .ci/statics.py")
        status = 1
    if status == 0:
        print(f"statics: ok ({len(found)} flagged statics: {len(ALLOWED)} allowed, "
              f"{len(DEBT)} listed as debt)")
    return status


if __name__ == "__main__":
    sys.exit(main())
