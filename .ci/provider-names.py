#!/usr/bin/env python3
"""Fail if an object-store provider is named outside storage/ and config/,
or its specifics inside the generic object-store back end.

Step 2 of the layering (ARCHITECTURE.md, "Layers"): the server, the CLI,
the account back ends and the options reach object stores through the
storage layer (storage/stores.rs), so that a new provider needs no change
elsewhere. This script reads the non-test code of crates/portcullis/src
(comments, literals and test items left out, as .ci/module-cycles.py does)
and prints every identifier with a provider's name as one of its words
(`S3Options`, `s3::`, `s3_profile`; not `s3cret`) outside those two.
Inside storage/object/, the back end every provider shares, it also
prints every identifier that names a provider's specifics: its name or
its vendor's, its SDK's module (`AmazonS3`, `aws::`, `MicrosoftAzure`,
`s3_code`), which belong in the provider's own module (storage/s3/)
behind the `Provider` trait (storage/object/provider.rs).
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

PROVIDERS = {"s3", "azure"}
ALLOWED = {"storage", "config"}
# The generic back end, and the words of a provider's specifics there.
GENERIC = ("storage", "object")
SPECIFICS = PROVIDERS | {"aws", "amazon", "azure", "microsoft", "gcp",
                         "gcs", "google", "minio", "moto"}
WORD = re.compile(r"[A-Z][a-z]*[0-9]*|[a-z]+[0-9]*|[0-9]+")


def names_provider(ident, words=PROVIDERS):
    """Whether one of the identifier's words (snake or camel case) is in
    `words` (a provider, by default)."""
    return any(w.lower() in words
               for part in ident.split("_") for w in WORD.findall(part))


def offending(path, module, test_files, vocab=PROVIDERS):
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
        if mc.IDENT.fullmatch(t) and names_provider(t, vocab):
            found.append((t, line))
        k += 1
    return found


def main():
    src, files = mc.rust_files()
    test_files = set()
    bad = specific = 0
    for path in files:
        module = mc.module_of(src, path)
        if module and module[-1] == "tests":
            continue
        if any(tuple(module[:i]) in test_files for i in range(1, len(module) + 1)):
            continue
        if tuple(module[:2]) == GENERIC:
            for ident, line in offending(path, module, test_files, SPECIFICS):
                print(f"{os.path.relpath(path, src)}:{line}: {ident}")
                specific += 1
            continue
        if module and module[0] in ALLOWED:
            continue
        for ident, line in offending(path, module, test_files):
            print(f"{os.path.relpath(path, src)}:{line}: {ident}")
            bad += 1
    if bad:
        print(f"{bad} name(s) of an object-store provider outside storage/ and"
              " config/: ask the storage layer (storage/stores.rs) instead")
    if specific:
        print(f"{specific} name(s) of a provider's specifics in the generic"
              " object-store back end (storage/object/): move them behind"
              " the Provider trait, into the provider's module")
    if bad or specific:
        return 1
    print("no object-store provider named outside storage/ and config/, nor"
          " a provider's specifics in storage/object/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
