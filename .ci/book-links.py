#!/usr/bin/env python3
"""Fail on a broken internal link or anchor in the book (docs/src) or in
the README, which links into it.

mdbook checks neither. Every Markdown link or image whose target is not
an absolute URL must name a file that exists (relative to the page) and,
when it has a #fragment, a heading of that page (ids made as mdbook makes
them). {{#include}} directives are expanded first, so headings and links
of included files count, and the included file must exist.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "src")
# The built book (`mdbook build docs`), when present: anchors are also
# looked up in the HTML mdbook wrote.
BOOK = os.path.join(ROOT, "..", "book")
INCLUDE = re.compile(r"\{\{#include\s+([^}\s:]+)(?::[^}]*)?\s*\}\}")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def expand(path, problems, depth=0):
    text = open(path, encoding="utf-8").read()

    def sub(m):
        target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(1)))
        if not os.path.isfile(target):
            problems.append(f"{rel(path)}: {{{{#include {m.group(1)}}}}}: no such file")
            return ""
        if depth > 5:
            return ""
        return expand(target, problems, depth + 1)

    return INCLUDE.sub(sub, text)


def prose(text):
    """The text outside fenced code blocks and inline code."""
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else re.sub(r"`[^`]*`", "", line))
    return out


def normalize_id(heading):
    """mdbook's id for a heading (utils::normalize_id)."""
    heading = re.sub(r"<[^>]*>", "", heading)
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    out = []
    for ch in heading.lower():
        if ch.isalnum() or ch in "_-":
            out.append(ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def anchors(path, problems):
    ids, seen = set(), {}
    text = expand(path, problems)
    fenced = False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            base = normalize_id(m.group(2).replace("`", ""))
            n = seen.get(base, 0)
            seen[base] = n + 1
            ids.add(base if n == 0 else f"{base}-{n}")
    return ids


def rel(path):
    return os.path.relpath(path, ROOT)


def main():
    problems = []
    cache = {}
    pages = []
    for d, _, files in os.walk(ROOT):
        pages += [os.path.join(d, f) for f in files if f.endswith(".md")]
    # The README links into the book: its links count too.
    pages.append(os.path.normpath(os.path.join(ROOT, "..", "..", "README.md")))
    for page in sorted(pages):
        lines = prose(expand(page, problems))
        targets = []
        for n, line in enumerate(lines, 1):
            targets += [(n, t) for t in LINK.findall(line)]
            targets += [(n, t) for t in REF_DEF.findall(line)]
        for n, target in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto:
            file, _, frag = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(page), file)) if file else page
            where = f"{rel(page)}:{n}: {target}"
            if not os.path.exists(dest):
                problems.append(f"{where}: no such file")
                continue
            if frag:
                if not dest.endswith(".md"):
                    problems.append(f"{where}: a fragment of a file that is not a page")
                    continue
                if dest not in cache:
                    cache[dest] = anchors(dest, problems)
                if frag not in cache[dest]:
                    problems.append(f"{where}: no heading with id #{frag} in {rel(dest)}")
                html = os.path.join(BOOK, os.path.relpath(dest, ROOT)[:-3] + ".html")
                if os.path.isfile(html) and f'id="{frag}"' not in open(html, encoding="utf-8").read():
                    problems.append(f"{where}: the built page {os.path.relpath(html, BOOK)} has no id {frag}")
    for p in sorted(set(problems)):
        print(p, file=sys.stderr)
    if problems:
        print(f"{len(set(problems))} broken link(s) in the book", file=sys.stderr)
        return 1
    print(f"book links: {len(pages)} pages, all internal links and anchors found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
