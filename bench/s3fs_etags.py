#!/usr/bin/env python3
"""s3fs_etags.py STORE BUCKET: give every file in s3s-fs's STORE/BUCKET the
ETag a PUT would have stored (its MD5, in s3s-fs's own
`.bucket-B.object-K.internal.json` beside the bucket).

The referee writes its fixtures as plain files in the bucket's directory.
s3s-fs has no stored ETag for such a file and reads the whole file to hash
it on every GET and for every object of a listing page, which an S3 store
never does (it keeps the ETag from the upload). Without this, each ranged
GET of a 256 MiB object would read all 256 MiB first."""
import base64
import hashlib
import json
import os
import sys


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


def main():
    store, bucket = sys.argv[1], sys.argv[2]
    top = os.path.join(store, bucket)
    n = 0
    for d, _, files in os.walk(top):
        for name in files:
            path = os.path.join(d, name)
            key = os.path.relpath(path, top)
            h = hashlib.md5()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            info = os.path.join(store, f".bucket-{b64(bucket)}.object-{b64(key)}.internal.json")
            with open(info, "w") as f:
                json.dump({"e_tag": h.hexdigest()}, f)
            n += 1
    print(f"# {n} objects given their ETags", file=sys.stderr)


main()
