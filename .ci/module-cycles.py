#!/usr/bin/env python3
"""Fail on any cycle among the server crate's top-level modules.

The layers depend one way (ARCHITECTURE.md, "Layers"): config -> options ->
the concerns -> session -> server -> cli. This script reads every .rs file
under crates/portcullis/src, drops comments, string and char literals and
test code (`#[cfg(test)]` items, `mod tests`, `tests.rs` files and the
files of a `#[cfg(test)] mod x;`), collects every path that names another
top-level module (`crate::x::..`, `use crate::{x, y}` groups, inline paths,
and `super::` paths that climb out of a top-level module), and prints each
strongly connected group of more than one module with one example edge
(file:line) for each dependency inside it. Exit status 1 if there is any.

A rust-analyzer based tool would be exact, but takes too long to build on
the CI machine; the crate's code is plain enough for a tokenizer.
Usage: .ci/module-cycles.py [SRC_DIR]
"""

import os
import re
import sys

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokens(text):
    """Yield (token, line) with comments and literals left out.

    Tokens are identifiers, `::`, and single punctuation characters.
    """
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
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
        elif re.match(r'b?r#*"', text[i:i + 20]):
            m = re.match(r'b?r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            line += text.count("\n", i, j)
            i = j
        elif c == '"' or text.startswith('b"', i):
            i += 1 if c == '"' else 2
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                line += text[i] == "\n"
                i += 1
            i += 1
        elif c == "'" or text.startswith("b'", i):
            # A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            k = i + (1 if c == "'" else 2)
            m = re.match(r"(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'])'",
                         text[k:k + 12])
            if m:
                i = k + m.end()
            else:
                i += 1
        elif IDENT.match(c):
            m = IDENT.match(text, i)
            yield m.group(0), line
            i = m.end()
        elif text.startswith("::", i):
            yield "::", line
            i += 2
        else:
            yield c, line
            i += 1


def skip_item(toks, k):
    """Index past the item starting at toks[k]: to its `;` or its block's `}`."""
    depth = 0
    while k < len(toks):
        t = toks[k][0]
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
            if depth < 0:
                return k  # the end of the enclosing block
            if depth == 0 and t == "}":
                return k + 1
        elif t == ";" and depth == 0:
            return k + 1
        k += 1
    return k


def attribute_end(toks, k):
    """toks[k] is `#`; index past its `[...]`."""
    k += 1
    if k < len(toks) and toks[k][0] == "!":
        k += 1
    depth = 0
    while k < len(toks):
        t = toks[k][0]
        if t == "[":
            depth += 1
        elif t == "]":
            depth -= 1
            if depth == 0:
                return k + 1
        k += 1
    return k


def is_cfg_test(attr):
    """Whether attribute tokens say the item exists only in tests."""
    words = [t for t, _ in attr]
    if "cfg" not in words or "test" not in words:
        return False
    # cfg(not(test)) is live code; cfg(test) and cfg(all(test, ..)) are not.
    return "not" not in words


def group_heads(toks, k):
    """toks[k] is the `{` of a use group: the first segment of each branch."""
    heads, depth, expect = [], 0, True
    while k < len(toks):
        t, line = toks[k]
        if t == "{":
            depth += 1
            expect = depth == 1
        elif t == "}":
            depth -= 1
            if depth == 0:
                break
        elif t == "," and depth == 1:
            expect = True
        elif expect and depth == 1 and IDENT.fullmatch(t):
            heads.append((t, line))
            expect = False
        k += 1
    return heads


def scan(path, module, test_files, top_modules):
    """Edges (target, line) of one file whose module path is `module`."""
    with open(path, encoding="utf-8") as f:
        toks = list(tokens(f.read()))
    edges = []
    mods = []  # (brace depth at which an inline `mod x {` opened, name)
    depth = 0
    k = 0
    while k < len(toks):
        t, line = toks[k]
        if t == "#":
            end = attribute_end(toks, k)
            if is_cfg_test(toks[k:end]):
                # Skip any further attributes, then the item itself.
                j = end
                while j < len(toks) and toks[j][0] == "#":
                    j = attribute_end(toks, j)
                words = [w for w, _ in toks[j:j + 4]]
                if "mod" in words:
                    name = words[words.index("mod") + 1]
                    if toks[skip_item(toks, j) - 1][0] == ";":
                        cur = module + [n for _, n in mods]
                        test_files.add(tuple(cur + [name]))
                k = skip_item(toks, j)
            else:
                k = end
            continue
        if t == "mod" and k + 2 < len(toks) and toks[k + 1][0] == "tests":
            k = skip_item(toks, k)
            continue
        if t == "mod" and k + 2 < len(toks) and toks[k + 2][0] == "{":
            mods.append((depth + 1, toks[k + 1][0]))
        if t == "{":
            depth += 1
        elif t == "}":
            while mods and mods[-1][0] == depth:
                mods.pop()
            depth -= 1
        if t in ("crate", "super") and k + 1 < len(toks) and toks[k + 1][0] == "::":
            # The path's position relative to the crate root.
            if t == "crate":
                base, j = [], k + 2
            else:
                base = module + [n for _, n in mods]
                j = k
                while (j + 1 < len(toks) and toks[j][0] == "super"
                       and toks[j + 1][0] == "::"):
                    base = base[:-1]
                    j += 2
                if base:
                    k = j
                    continue  # still inside its own top-level module
            if j < len(toks) and toks[j][0] == "{":
                edges.extend(group_heads(toks, j))
            elif j < len(toks):
                edges.append(toks[j])
            k = j
            continue
        k += 1
    own = module[0] if module else None
    return [(m, l) for m, l in edges if m in top_modules and m != own]


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return []
    return rel


def strongly_connected(graph):
    """Tarjan's algorithm; the components of more than one node."""
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


def rust_files():
    """The crate's source directory (argv[1], or the server crate's) and
    its .rs files in order of depth, so that a `#[cfg(test)] mod x;` is
    seen before x's file."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        root, "crates", "portcullis", "src")
    files = []
    for d, _, names in os.walk(src):
        files += [os.path.join(d, n) for n in names if n.endswith(".rs")]
    files.sort(key=lambda p: (p.count(os.sep), p))
    return src, files


def main():
    src, files = rust_files()
    top = {module_of(src, p)[0] for p in files if module_of(src, p)}
    test_files = set()
    example = {}  # (from, to) -> "file:line"
    graph = {}
    for path in files:
        module = module_of(src, path)
        if module and module[-1] == "tests":
            continue
        if any(tuple(module[:i]) in test_files for i in range(1, len(module) + 1)):
            continue
        for target, line in scan(path, module, test_files, top):
            own = module[0] if module else "(root)"
            graph.setdefault(own, set()).add(target)
            example.setdefault((own, target),
                               f"{os.path.relpath(path, src)}:{line}")
    cycles = strongly_connected(graph)
    for comp in cycles:
        print("module cycle: " + " <-> ".join(comp))
        for a in comp:
            for b in sorted(graph[a] & set(comp)):
                print(f"  {a} -> {b}  e.g. {example[(a, b)]}")
    if cycles:
        print(f"{len(cycles)} cycle(s) among top-level modules of {src}"
              " (layers: config -> options -> concerns -> session -> server -> cli)")
        return 1
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    print(f"no cycle among the top-level modules of {os.path.relpath(src, root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
