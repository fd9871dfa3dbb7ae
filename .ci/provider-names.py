#!/usr/bin/env python3
"""Fail if an object-store provider is named outside storage/ and config/.

Step 2 of the layering (ARCHITECTURE.md, "Layers"): the server, the CLI,
the account back ends and the options reach object stores through the
storage layer (storage/stores.rs), so that a new provider needs no change
elsewhere. This script reads the non-test code of crates/portcullis/src
(comments, literals and test items left out, as .ci/module-cycles.py does)
and prints every identifier with a provider's name as one of its words
(`S3Options`, `s3::`, `s3_profile`; not `s3cret`) outside those two.
Exit status 1 if there is any.
Usage: .ci/provider-names.py [SRC_DIR]
"""

import importlib.util
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "module_cycles", os.path.join(HERE, "module-cycles.py"))
mc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mc)

PROVIDERS = {"s3"}
ALLOWED = {"storage", "config"}
WORD = re.compile(r"[A-Z][a-z]*[0-9]*|[a-z]+[0-9]*|[0-9]+")


def names_provider(ident):
    """Whether one of the identifier's words (snake or camel case) is a provider."""
    return any(w.lower() in PROVIDERS
               for part in ident.split("_") for w in WORD.findall(part))


def offending(path, module, test_files):
    """(identifier, line) of the non-test code of one file."""
    with open(path, encoding="utf-8") as f:
        toks = list(mc.tokens(f.read()))
    found = []
    k = 0
    while k < len(toks):
        t, line = toks[k]
        if t == "#":
            end = mc.attribute_end(toks, k)
            if mc.is_cfg_test(toks[k:end]):
                j = end
                while j < len(toks) and toks[j][0] == "#":
                    j = mc.attribute_end(toks, j)
                words = [w for w, _ in toks[j:j + 4]]
                if "mod" in words:
                    name = words[words.index("mod") + 1]
                    if toks[mc.skip_item(toks, j) - 1][0] == ";":
                        test_files.add(tuple(module + [name]))
                k = mc.skip_item(toks, j)
            else:
                k = end
            continue
        if t == "mod" and k + 2 < len(toks) and toks[k + 1][0] == "tests":
            k = mc.skip_item(toks, k)
            continue
        if mc.IDENT.fullmatch(t) and names_provider(t):
            found.append((t, line))
        k += 1
    return found


def main():
    src, files = mc.rust_files()
    test_files = set()
    bad = 0
    for path in files:
        module = mc.module_of(src, path)
        if module and (module[0] in ALLOWED or module[-1] == "tests"):
            continue
        if any(tuple(module[:i]) in test_files for i in range(1, len(module) + 1)):
            continue
        for ident, line in offending(path, module, test_files):
            print(f"{os.path.relpath(path, src)}:{line}: {ident}")
            bad += 1
    if bad:
        print(f"{bad} name(s) of an object-store provider outside storage/ and"
              " config/: ask the storage layer (storage/stores.rs) instead")
        return 1
    print("no object-store provider named outside storage/ and config/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
