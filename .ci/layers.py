#!/usr/bin/env python3
"""Layer check of `engine/src` (issue 15, item 1): api -> domain -> data -> foundation.

Reads every `crate::<module>` path in the engine's sources (comments stripped), folds it to an
edge between top-level modules, and fails when

  * an edge points upward (a lower layer naming a higher one), or
  * the modules of one layer import each other in a cycle,
  * a module below the api layer names `pocketbun_http::Request` or `RequestHead` (no domain
    function takes an HTTP request: the api layer's extractors, `apis/extract.rs`, turn one
    into the domain's typed inputs),

unless the edge is listed in `.ci/layers-debt.txt`, the debt the layering still has to pay.
The list is a ratchet: an entry whose edge no longer exists also fails the check, so every
removed upward import is taken off the list in the same commit and cannot come back.

Usage: `.ci/layers.py` (check), `.ci/layers.py --edges` (print the whole graph),
`.ci/layers.py --write-debt` (rewrite the debt list from today's violations).
"""

import os
import re
import sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "engine", "src")
DEBT = os.path.join(ROOT, ".ci", "layers-debt.txt")

# Higher number = higher layer. A module may name modules of its own layer or below.
LAYERS = {
    # api: the process, the command line, HTTP handlers and middleware
    "main": 3, "lib": 3, "cli": 3, "app": 3, "apis": 3, "ctx": 3, "public": 3, "ratelimit": 3,
    "serve_options": 3, "tls": 3, "superuser": 3, "fuzzing": 3, "complexity_tests": 3, "idle": 3,
    # domain: PocketBase's features, no HTTP request types
    "records": 2, "auth": 2, "realtime": 2, "files": 2, "settings": 2, "logs": 2,
    "backups": 2, "crons": 2, "state": 2, "replicate": 2, "cluster": 2,
    # data: the schema model over the storage crate; all record and auth-row SQL
    "schema": 1, "recstore": 1,
    # foundation: shared helpers with no knowledge of features
    "error": 0, "go": 0, "json_strict": 0, "offload": 0, "client_ip": 0, "encryption": 0,
    "snapshot": 0, "fixed_windows": 0, "app_store": 0, "named_slot": 0,
}
NAMES = {3: "api", 2: "domain", 1: "data", 0: "foundation"}
CRATE_PATH = re.compile(r"\bcrate::([a-z_0-9]+)")
# `pocketbun_http::Request`, `pocketbun_http::request::RequestHead`, or either inside a
# `use pocketbun_http::{…}` group
HTTP_REQUEST = re.compile(
    r"\bpocketbun_http::(?:request::)?(?:\{[^}]*\bRequest(?:Head)?\b[^}]*\}|Request(?:Head)?\b)"
)
COMMENT = re.compile(r"//[^\n]*")


def top_module(path):
    first = os.path.relpath(path, SRC).split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def edges():
    found = defaultdict(set)  # (from, to) -> files
    for dirpath, _, files in os.walk(SRC):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            src = module = top_module(path)
            with open(path, encoding="utf-8") as f:
                text = COMMENT.sub("", f.read())
            for target in CRATE_PATH.findall(text):
                if target != module and target in LAYERS:
                    found[(src, target)].add(os.path.relpath(path, ROOT))
    return found


def http_requests():
    """Files below the api layer that name an HTTP request type."""
    found = []
    for dirpath, _, files in os.walk(SRC):
        for name in files:
            path = os.path.join(dirpath, name)
            if not name.endswith(".rs") or LAYERS.get(top_module(path), 3) >= 3:
                continue
            with open(path, encoding="utf-8") as f:
                text = COMMENT.sub("", f.read())
            if HTTP_REQUEST.search(text):
                found.append(os.path.relpath(path, ROOT))
    return sorted(found)


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def violations(found):
    """Upward edges, plus every same-layer edge that lies on a cycle."""
    bad = set()
    for (a, b) in found:
        if LAYERS[a] < LAYERS[b]:
            bad.add((a, b))
    same = defaultdict(set)
    for (a, b) in found:
        if LAYERS[a] == LAYERS[b]:
            same[a].add(b)
    for comp in cycles(same):
        members = set(comp)
        for a in comp:
            for b in same[a]:
                if b in members:
                    bad.add((a, b))
    return bad


def read_debt():
    debt = set()
    if os.path.exists(DEBT):
        with open(DEBT, encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    a, _, b = line.partition("->")
                    debt.add((a.strip(), b.strip()))
    return debt


def main():
    found = edges()
    unknown = sorted({m for edge in found for m in edge if m not in LAYERS})
    modules = {top_module(os.path.join(d, f)) for d, _, fs in os.walk(SRC) for f in fs
               if f.endswith(".rs")}
    unplaced = sorted(m for m in modules if m not in LAYERS)
    if unplaced or unknown:
        for m in unplaced + unknown:
            print(f"layers: module `{m}` has no layer; add it to LAYERS in .ci/layers.py")
        return 1
    if "--edges" in sys.argv:
        for (a, b), files in sorted(found.items()):
            print(f"{a} ({NAMES[LAYERS[a]]}) -> {b} ({NAMES[LAYERS[b]]}): {len(files)} files")
        return 0
    bad = violations(found)
    if "--write-debt" in sys.argv:
        with open(DEBT, "w", encoding="utf-8") as f:
            f.write("# Imports that break engine/src's layering, to be removed (see .ci/layers.py).\n")
            for a, b in sorted(bad):
                f.write(f"{a} -> {b}\n")
        print(f"wrote {len(bad)} edges to {os.path.relpath(DEBT, ROOT)}")
        return 0
    debt = read_debt()
    status = 0
    for a, b in sorted(bad - debt):
        files = ", ".join(sorted(found[(a, b)]))
        kind = "upward" if LAYERS[a] < LAYERS[b] else "cyclic"
        print(f"layers: new {kind} import {a} -> {b} ({files})")
        status = 1
    for a, b in sorted(debt - bad):
        print(f"layers: {a} -> {b} no longer breaks the layering; take it off .ci/layers-debt.txt")
        status = 1
    for path in http_requests():
        layer = NAMES[LAYERS[top_module(os.path.join(ROOT, path))]]
        print(f"layers: {path} ({layer}) names pocketbun_http's Request; take a typed input "
              "built by an extractor in apis/extract.rs instead")
        status = 1
    if status == 0:
        print(f"layers: ok ({len(found)} module edges, {len(debt)} listed as debt)")
    return status


if __name__ == "__main__":
    sys.exit(main())
