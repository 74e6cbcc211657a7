#!/usr/bin/env python3
"""Record SQL lives in one module (issue 15, item 2): `engine/src/recstore/`.

Fails when a string literal of `engine/src` outside `recstore/` starts with a SQL statement:
`SELECT`, `INSERT`, `UPDATE`, `DELETE` or `WITH` (any case, leading whitespace allowed, raw
strings and `format!` strings included), unless its file is on the allow-list below, each
entry with the reason its SQL is not record SQL. Test code (`#[cfg(test)]` modules) is not
checked: tests set up and inspect tables directly.

A literal counts as SQL when the keyword is followed by white space and, for a keyword not
written in capitals, later by an SQL clause word (FROM, INTO, SET, WHERE, VALUES, AS): so the
field type "select", the HTTP method "DELETE", the action names "update"/"delete" and
"Select at least 2" are not SQL, while `"SELECT "` pushed onto a buffer is.

Usage: `.ci/sql_home.py` (check), `.ci/sql_home.py --list` (print every SQL literal found).
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "engine", "src")
HOME = "recstore"

# Files of engine/src whose SQL is not on records or auth rows, with why.
ALLOW = {
    # the request log and its hourly statistics, in auxiliary.db (`_logs`)
    "logs/mod.rs": "request log rows (_logs)",
    "logs/hour.rs": "the hourly index of _logs",
    "apis/logs.rs": "the logs API reads _logs",
    # the application settings, one `_params` row
    "settings/mod.rs": "settings (_params)",
    # replication: Litestream's position and the replica's change detector
    "replicate/follower.rs": "the replica's schema/settings change detector (_collections, _params)",
    # index introspection for the explain endpoint (sqlite_master, pragma_index_list)
    "apis/explain.rs": "index introspection (sqlite_master)",
}

KEYWORD = re.compile(r"^\s*(select|insert|update|delete|with)\b(.*)", re.I | re.S)
CLAUSE = re.compile(r"\b(from|into|set|where|values|as)\b", re.I)


def literals(text):
    """(line, string value) of every string literal, comments and char literals skipped."""
    out, i, n, line = [], 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j
            out.append((line, text[i + len(m.group(0)):j]))
            line += text.count("\n", i, j)
            i = j + len(end)
        elif c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\":
                    nxt = text[j + 1] if j + 1 < n else ""
                    if nxt == "\n":  # line continuation: skip the newline and indentation
                        j += 2
                        while j < n and text[j] in " \t\n\r":
                            j += 1
                        continue
                    buf.append(nxt)
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            out.append((line, "".join(buf)))
            line += text.count("\n", i, j)
            i = j + 1
        elif c == "'":
            # a char literal ('a', '\n', '\'') or a lifetime ('a)
            m = re.match(r"'(\\.|\\u\{[0-9a-fA-F]+\}|[^\\'])'", text[i:])
            i += len(m.group(0)) if m else 1
        else:
            i += 1
    return out


def strip_test_modules(text):
    """The text with each `#[cfg(test)] mod name { ... }` body blanked (lines kept)."""
    out = text
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", text):
        start, depth, i = m.end(), 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        blank = re.sub(r"[^\n]", " ", text[start:i])
        out = out[:start] + blank + out[i:]
    return out


def test_files():
    """Files included only under `#[cfg(test)] mod name;`."""
    found = set()
    for dirpath, _, files in os.walk(SRC):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            base = dirpath if name in ("mod.rs", "lib.rs", "main.rs") else os.path.join(dirpath, name[:-3])
            for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+(\w+)\s*;", text):
                for cand in (os.path.join(base, m.group(2) + ".rs"), os.path.join(base, m.group(2), "mod.rs")):
                    found.add(os.path.normpath(cand))
    return found


def is_sql(value):
    m = KEYWORD.match(value)
    if not m or not m.group(2)[:1].isspace():
        return False
    keyword = m.group(1)
    return keyword.isupper() or bool(CLAUSE.search(m.group(2)))


def main():
    tests = test_files()
    found = []
    for dirpath, _, files in os.walk(SRC):
        for name in sorted(files):
            path = os.path.normpath(os.path.join(dirpath, name))
            rel = os.path.relpath(path, SRC).replace(os.sep, "/")
            if not name.endswith(".rs") or rel.split("/")[0] == HOME or path in tests:
                continue
            with open(path, encoding="utf-8") as f:
                text = strip_test_modules(f.read())
            for line, value in literals(text):
                if is_sql(value):
                    found.append((rel, line, value))
    if "--list" in sys.argv:
        for rel, line, value in found:
            print(f"{rel}:{line}: {value[:80]!r}")
        return 0
    status = 0
    used = set()
    for rel, line, value in found:
        if rel in ALLOW:
            used.add(rel)
            continue
        print(f"sql_home: engine/src/{rel}:{line}: SQL outside engine/src/{HOME}/: {value[:60]!r}")
        status = 1
    for rel in sorted(set(ALLOW) - used):
        print(f"sql_home: {rel} has no SQL left; take it off the allow-list in .ci/sql_home.py")
        status = 1
    if status == 0:
        print(f"sql_home: ok ({len(found)} SQL literals, all in allow-listed files)")
    return status


if __name__ == "__main__":
    sys.exit(main())
