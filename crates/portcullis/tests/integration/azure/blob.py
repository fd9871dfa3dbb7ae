"""The tests' look at an Azurite account, as the store itself shows it:
requests signed with the account's shared key (Azure's SharedKey scheme,
written out here so that no SDK is needed).

Usage: blob.py ENDPOINT ACCOUNT KEY COMMAND ARGS...
  create CONTAINER            make the container (no error if it exists)
  keys CONTAINER              every committed blob name, one a line, every page
  get CONTAINER NAME          the blob's bytes, as hex
  fetch CONTAINER NAME FILE   the blob's bytes into FILE, streamed (bench/azure.sh)
  put CONTAINER NAME FILE     put a blob with FILE's bytes
  many CONTAINER PREFIX N D   N blobs PREFIXfNNNNN and D blobs PREFIXdNN/x
  pending CONTAINER           names with uncommitted blocks and no committed blob
  snapshot CONTAINER NAME     take a snapshot of the blob (Snapshot Blob)
  all CONTAINER               every blob and snapshot, one a line ("NAME" or
                              "NAME@SNAPSHOT-TIME"), every page
  blocks CONTAINER NAME       the blob's blocks (Get Block List), "committed SIZE"
                              or "uncommitted SIZE", one a line, in order
  sas HOURS                   an account SAS token for the blob service, valid
                              for HOURS, that may read, add, create, write,
                              delete and list (signed with the account's key)
"""

import base64
import concurrent.futures
import datetime
import hashlib
import hmac
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

ENDPOINT, ACCOUNT, KEY = sys.argv[1].rstrip("/"), sys.argv[2], base64.b64decode(sys.argv[3])
VERSION = "2021-08-06"


def request(method, path, query=None, body=b"", headers=None, sink=None):
    """One signed request; (status, body), the body written to `sink`
    instead when given."""
    query = query or {}
    headers = dict(headers or {})
    if method == "PUT":
        # urllib would add a form Content-Type, which the signature must name.
        headers["Content-Type"] = "application/octet-stream"
    headers["x-ms-date"] = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%a, %d %b %Y %H:%M:%S GMT")
    headers["x-ms-version"] = VERSION
    url = ENDPOINT + urllib.parse.quote(path)
    parsed = urllib.parse.urlparse(url)
    canon_headers = "".join(
        "%s:%s\n" % (k.lower(), v.strip())
        for k, v in sorted(headers.items(), key=lambda kv: kv[0].lower())
        if k.lower().startswith("x-ms-"))
    canon_resource = "/%s%s" % (ACCOUNT, parsed.path)
    for k in sorted(query):
        canon_resource += "\n%s:%s" % (k.lower(), query[k])
    length = str(len(body)) if body else ""
    to_sign = "\n".join([
        method, "", "", length, "", headers.get("Content-Type", ""), "", "",
        "", "", "", "", canon_headers + canon_resource])
    sig = base64.b64encode(hmac.new(KEY, to_sign.encode(), hashlib.sha256).digest())
    headers["Authorization"] = "SharedKey %s:%s" % (ACCOUNT, sig.decode())
    if query:
        url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    req = urllib.request.Request(url, data=body if method == "PUT" else None,
                                 method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            if sink is None:
                return r.status, r.read()
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    return r.status, b""
                sink.write(chunk)
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def check(status, body, *ok):
    if status not in ok:
        sys.exit("store answered %d: %s" % (status, body.decode(errors="replace")))


def keys(container, include=None):
    marker = ""
    out = []
    while True:
        q = {"restype": "container", "comp": "list"}
        if include:
            q["include"] = include
        if marker:
            q["marker"] = marker
        status, body = request("GET", "/" + container, q)
        check(status, body, 200)
        root = ET.fromstring(body)
        out += [b.findtext("Name") + ("@" + b.findtext("Snapshot") if b.findtext("Snapshot") else "")
                for b in root.iter("Blob")]
        marker = root.findtext("NextMarker") or ""
        if not marker:
            return sorted(out)


def put(container, name, data):
    status, body = request("PUT", "/%s/%s" % (container, name), body=data,
                           headers={"x-ms-blob-type": "BlockBlob"})
    check(status, body, 201)


def account_sas(hours):
    """An account SAS (Azure's "Create an account SAS", version 2020-12-06
    and later: the encryption scope's line is signed, empty)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    q = {"sv": VERSION, "ss": "b", "srt": "sco", "sp": "racwdl",
         "st": (now - datetime.timedelta(minutes=5)).strftime(fmt),
         "se": (now + datetime.timedelta(hours=hours)).strftime(fmt),
         "spr": "https,http"}
    to_sign = "\n".join([ACCOUNT, q["sp"], q["ss"], q["srt"], q["st"], q["se"], "",
                         q["spr"], q["sv"], "", ""])
    q["sig"] = base64.b64encode(
        hmac.new(KEY, to_sign.encode(), hashlib.sha256).digest()).decode()
    return urllib.parse.urlencode(q, quote_via=urllib.parse.quote)


def main():
    cmd, args = sys.argv[4], sys.argv[5:]
    if cmd == "create":
        status, body = request("PUT", "/" + args[0], {"restype": "container"})
        check(status, body, 201, 409)
    elif cmd == "keys":
        for k in keys(args[0]):
            print(k)
    elif cmd == "pending":
        for k in sorted(set(keys(args[0], "uncommittedblobs")) - set(keys(args[0]))):
            print(k)
    elif cmd == "blocks":
        status, body = request("GET", "/%s/%s" % (args[0], args[1]),
                               {"comp": "blocklist", "blocklisttype": "all"})
        check(status, body, 200)
        root = ET.fromstring(body)
        for kind in ("Committed", "Uncommitted"):
            for b in root.iter(kind + "Blocks"):
                for block in b.iter("Block"):
                    print(kind.lower(), block.findtext("Size"))
    elif cmd == "snapshot":
        status, body = request("PUT", "/%s/%s" % (args[0], args[1]), {"comp": "snapshot"})
        check(status, body, 201)
    elif cmd == "all":
        for k in keys(args[0], "snapshots"):
            print(k)
    elif cmd == "sas":
        print(account_sas(float(args[0])))
    elif cmd == "get":
        status, body = request("GET", "/%s/%s" % (args[0], args[1]))
        check(status, body, 200)
        sys.stdout.write(body.hex())
    elif cmd == "fetch":
        with open(args[2], "wb") as f:
            status, body = request("GET", "/%s/%s" % (args[0], args[1]), sink=f)
        check(status, body, 200)
    elif cmd == "put":
        put(args[0], args[1], open(args[2], "rb").read())
    elif cmd == "many":
        c, p, n, d = args[0], args[1], int(args[2]), int(args[3])
        names = ["%sf%05d" % (p, i) for i in range(n)] + ["%sd%02d/x" % (p, i) for i in range(d)]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda k: put(c, k, b"x"), names))
    else:
        sys.exit("unknown command " + cmd)


main()
