#!/usr/bin/env python3
"""Regenerate docs/protocol-vectors/vectors.json from a live ferryd.

    python3 test/conformance/make_vectors.py --ferryd build/server/ferryd

Client vectors are built here; server vectors are the exact frames a real
ferryd sends for a fixed served folder (hello.txt = b"hello", mtime
1764370000). Values that differ from run to run (the upload token, the
commit's mtime) are replaced by fixed ones, and the frame is re-encoded the
way the server encodes (compact JSON, keys sorted), so every control vector
is byte-identical to sorted-key compact JSON: both Python's
json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
and nlohmann::json::dump() reproduce the hex exactly.

It also rewrites the hex dumps of docs/PROTOCOL.md (its appendix A): each
```hexdump block that follows a line "<!-- vector: NAME -->" becomes the
dump of that vector.

Not run by the test suite; the suite only checks the files it writes.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import ferry_wire as fw  # noqa: E402

MTIME = 1764370000
TOKEN = "9f2c4e1a7b3d5c6e8f0a1b2c3d4e5f60"


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def sorted_obj(obj):
    """obj with keys sorted (recursively), so json.loads keeps that order."""
    if isinstance(obj, dict):
        return {k: sorted_obj(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [sorted_obj(v) for v in obj]
    return obj


def control_vec(name, direction, obj, note=None):
    obj = sorted_obj(obj)
    raw = fw.frame(fw.KIND_CONTROL, canon(obj))
    v = {"name": name, "direction": direction, "kind": "control",
         "hex": raw.hex(), "json": obj}
    if note:
        v["note"] = note
    return v


def data_vec(name, direction, payload, note=None):
    raw = fw.frame(fw.KIND_DATA, payload)
    v = {"name": name, "direction": direction, "kind": "data",
         "hex": raw.hex(), "data_hex": payload.hex()}
    if note:
        v["note"] = note
    return v


def v2(vector):
    """A vector of a version-2 connection (PROTOCOL.md 8)."""
    vector["version"] = 2
    return vector


def offline(vector):
    """A reply the live session over the fixed folder does not give (it
    needs a folder the server's user may not read): the codecs check it,
    the live replay leaves it out."""
    vector["live"] = False
    return vector


def error_reply(rid, code, message):
    return {"id": rid, "ok": False,
            "error": {"code": code, "message": message}}


def version2_vectors(hello_reply):
    """A version-2 session over a served folder holding hello.txt and
    logs/2026/app.log (b"hello" each, mtime MTIME, mode 0644; folders
    0755): the tree's operations
    and each of their new errors. hello_reply is the live ferryd's; the
    rest is written from PROTOCOL.md sections 4.2 to 4.12."""
    out = []

    def pair(what, request, reply, note=None):
        out.append(v2(control_vec(what + " request", "client", request)))
        out.append(v2(control_vec(what + " reply", "server", reply, note)))

    hello = {"op": "hello", "id": 0, "version": 2, "client": "ferry/0.1.0"}
    pair("version 2: hello", hello, hello_reply,
         "the version this connection speaks, and its capabilities")
    folder = {"type": "folder", "size": 0, "mtime": MTIME, "mode": 0o755}
    out.append(v2(control_vec(
        "version 2: list request, recursive", "client",
        {"op": "list", "id": 21, "path": "logs", "recursive": True})))
    out.append(v2(control_vec(
        "version 2: list reply, a page of a recursive listing", "server",
        {"id": 21, "ok": True, "more": True,
         "files": [dict(folder, name="2026"),
                   {"name": "2026/app.log", "type": "file", "size": 5,
                    "mtime": MTIME, "mode": 0o644}]},
        "always paged; names relative to the path listed; a folder "
        "before what it holds")))
    out.append(v2(control_vec(
        "version 2: list reply, the last page", "server",
        {"id": 21, "ok": True, "files": [], "skipped_invalid_names": 0})))
    out.append(offline(v2(control_vec(
        "version 2: list reply, a page naming a folder it could not enter", "server",
        {"id": 21, "ok": True, "more": True,
         "files": [dict(folder, name="2026/private")],
         "holding_unlisted": ["2026/private"],
         "unreadable_folders": [{"path": "2026/private", "code": "forbidden"}]},
        "capability unreadable_folders: what it holds is unknown, never "
        "empty; the code a request for it would get (forbidden or io_error)"))))
    pair("version 2: stat of a folder",
         {"op": "stat", "id": 22, "name": "logs"},
         dict(folder, id=22, ok=True, name="logs"))
    pair("version 2: digest",
         {"op": "digest", "id": 23, "name": "logs/2026/app.log"},
         {"id": 23, "ok": True, "name": "logs/2026/app.log", "size": 5,
          "type": "file", "mtime": MTIME, "mode": 0o644,
          "sha256": hashlib.sha256(b"hello").hexdigest()},
         "the digest under the hash's name (sha256, the default)")
    pair("version 2: mkdir",
         {"op": "mkdir", "id": 24, "path": "a/b", "parents": True,
          "folder_modes": [0o700]},
         {"id": 24, "ok": True, "path": "a/b", "created": True},
         "capability folder_modes: b is made as mkdir(2) with mode 0700 "
         "(its source's), a, above the modes given, with 0777; both less "
         "the server's umask")
    pair("version 2: mkdir of an existing folder",
         {"op": "mkdir", "id": 25, "path": "a/b", "parents": False},
         error_reply(25, "exists", "\"a/b\" already exists"))
    pair("version 2: rename",
         {"op": "rename", "id": 26, "from": "hello.txt",
          "to": "a/b/hello.txt", "replace": False},
         {"id": 26, "ok": True, "from": "hello.txt", "to": "a/b/hello.txt"})
    pair("version 2: rename of a folder into its own subfolder",
         {"op": "rename", "id": 27, "from": "a", "to": "a/b/c",
          "replace": False},
         error_reply(27, "invalid_move",
                     "cannot move the folder \"a\" into itself (\"a/b/c\")"))
    pair("version 2: stat through a file",
         {"op": "stat", "id": 28, "name": "a/b/hello.txt/x"},
         error_reply(28, "not_a_folder", "\"a/b/hello.txt\" is not a folder"))
    pair("version 2: delete of a folder that is not empty",
         {"op": "delete", "id": 29, "path": "a", "recursive": False},
         error_reply(29, "not_empty", "the folder \"a\" is not empty"))
    pair("version 2: delete, recursive",
         {"op": "delete", "id": 30, "path": "a", "recursive": True},
         {"id": 30, "ok": True, "path": "a", "type": "folder", "files": 1,
          "folders": 2}, "counts what was removed, the folder itself included")
    pair("version 2: stat of a path with '..'",
         {"op": "stat", "id": 31, "name": "logs/../hello.txt"},
         error_reply(31, "invalid_name",
                     "path must not contain a '..' component"))
    put = {"op": "put", "id": 32, "name": "new/deeper/abc.txt", "size": 3,
           "resume": False, "parents": True, "mtime": MTIME, "mode": 0o600}
    pair("version 2: put with parents and mtime", put,
         {"id": 32, "ok": True, "offset": 0, "token": TOKEN},
         "the missing folders are made at the put; a new file is published "
         "as if created with mode (capability mode), here 0600")
    pair("version 2: abort of that put",
         {"op": "abort", "id": 32, "discard": True},
         {"id": 32, "ok": True, "kept": False, "offset": 0})
    pair("version 2: put of an empty file onto a name that exists",
         {"op": "put", "id": 39, "name": "logs/2026/app.log", "size": 0,
          "resume": False},
         {"id": 39, "ok": True, "offset": 0, "token": TOKEN},
         "no data frame follows: the file is empty")
    pair("version 2: commit with replace false",
         {"op": "commit", "id": 39, "replace": False,
          "sha256": hashlib.sha256(b"").hexdigest()},
         error_reply(39, "exists",
                     "\"logs/2026/app.log\" exists at the commit, which "
                     "asked not to replace it: it was left alone, nothing "
                     "was published"),
         "publish only where nothing stands at the name when the rename "
         "runs (capability commit_replace): the file there stays, the "
         "upload is discarded")
    pair("version 2: put of an empty file, to publish with its folder's sync deferred",
         {"op": "put", "id": 40, "name": "new/empty.log", "size": 0,
          "resume": False, "mtime": MTIME, "mode": 0o600},
         {"id": 40, "ok": True, "offset": 0, "token": TOKEN})
    pair("version 2: commit with defer_sync",
         {"op": "commit", "id": 40, "defer_sync": True,
          "sha256": hashlib.sha256(b"").hexdigest()},
         {"id": 40, "ok": True, "name": "new/empty.log", "size": 0, "mtime": MTIME, "mode": 0o600,
          "sha256": hashlib.sha256(b"").hexdigest(), "synced": False},
         "capability deferred_sync: published and its data durable, the "
         "folder's new entry durable only once a sync is answered")
    pair("version 2: sync",
         {"op": "sync", "id": 41},
         {"id": 41, "ok": True, "folders": 1},
         "makes durable what this connection's deferred commits published: "
         "one fsync per folder at most")
    pair("version 2: set_mtime of a folder",
         {"op": "set_mtime", "id": 33, "path": "logs", "mtime": MTIME - 86400},
         dict(folder, id=33, ok=True, name="logs", mtime=MTIME - 86400),
         "the reply describes the entry as a stat would, after the change")
    listed = {"type": "file", "size": 5, "mtime": MTIME}
    pair("version 2: set_mtime with expect, another file there",
         {"op": "set_mtime", "id": 37, "path": "logs/2026/app.log",
          "mtime": MTIME - 60, "expect": dict(listed, size=6)},
         error_reply(37, "file_changed",
                     "\"logs/2026/app.log\" has 5 bytes, expected 6: not "
                     "the entry expected, so its time was not set"),
         "the entry at the path is not the one expected: its time stays")
    pair("version 2: set_mtime with expect, the file as listed",
         {"op": "set_mtime", "id": 38, "path": "logs/2026/app.log",
          "mtime": MTIME, "expect": listed},
         dict(listed, id=38, ok=True, name="logs/2026/app.log", mode=0o644),
         "compared and set on one opened descriptor")
    pair("version 2: delete with expect, another file there",
         {"op": "delete", "id": 34, "path": "logs/2026/app.log",
          "recursive": False, "expect": dict(listed, mtime=MTIME - 1)},
         error_reply(34, "file_changed",
                     "\"logs/2026/app.log\" has mtime %d, expected %d: not "
                     "the entry expected, so not deleted" % (MTIME, MTIME - 1)),
         "the entry at the path is not the one expected: it stays")
    pair("version 2: delete with expect, the file as listed",
         {"op": "delete", "id": 35, "path": "logs/2026/app.log",
          "recursive": False, "expect": listed},
         {"id": 35, "ok": True, "path": "logs/2026/app.log", "type": "file",
          "files": 1, "folders": 0})
    pair("version 2: delete with expect, a folder by its type alone",
         {"op": "delete", "id": 36, "path": "logs/2026",
          "recursive": False, "expect": {"type": "folder"}},
         {"id": 36, "ok": True, "path": "logs/2026", "type": "folder",
          "files": 0, "folders": 1},
         "a folder's mtime changes as what it held is removed: not compared")
    return out


def invalid_vec(name, raw, kind, error, note):
    return {"name": name, "direction": "client", "kind": kind,
            "hex": raw.hex(), "error": error, "note": note}


def hexdump(raw):
    """Header on its own line, then the payload 16 bytes a line; the bytes
    of a line are the hex before its first '|'."""
    kind, n = raw[0], int.from_bytes(raw[1:5], "big")
    what = {1: "control", 2: "data"}.get(kind, "unknown")
    lines = ["%-48s| kind 0x%02x (%s), payload length 0x%08x = %d"
             % (" ".join("%02x" % b for b in raw[:5]), kind, what, n, n)]
    p = raw[5:]
    for i in range(0, len(p), 16):
        chunk = p[i:i + 16]
        lines.append("%-48s|%s|" % (
            " ".join("%02x" % b for b in chunk),
            "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)))
    return "\n".join(lines)


def rewrite_worked_example(path, vectors):
    by_name = {v["name"]: v for v in vectors}
    with open(path) as f:
        text = f.read()

    def repl(m):
        raw = bytes.fromhex(by_name[m.group(1)]["hex"])
        return "<!-- vector: %s -->\n```hexdump\n%s\n```" % (m.group(1),
                                                           hexdump(raw))
    text, n = re.subn(r"<!-- vector: (.*?) -->\n```hexdump\n.*?```", repl,
                      text, flags=re.S)
    with open(path, "w") as f:
        f.write(text)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferryd", default=os.environ.get("FERRYD"))
    ap.add_argument("--out", default=os.path.join(
        HERE, "..", "..", "docs", "protocol-vectors", "vectors.json"))
    args = ap.parse_args()

    root = tempfile.mkdtemp(prefix="ferry-vectors-")
    path = os.path.join(root, "hello.txt")
    with open(path, "wb") as f:
        f.write(b"hello")
    os.utime(path, (MTIME, MTIME))
    proc = subprocess.Popen([args.ferryd, "--root", root, "--listen",
                             "127.0.0.1:0", "--drain-timeout", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = int(proc.stdout.readline().decode().strip().rsplit(":", 1)[1])
    c = fw.Client("127.0.0.1", port)

    def exchange(obj):
        c.send(obj)
        f = c.recv_frame()
        return f.json()

    out = []
    hello = {"op": "hello", "id": 0, "version": 1, "client": "ferry/0.1.0"}
    out.append(control_vec("hello request", "client", hello))
    out.append(control_vec("hello reply", "server", exchange(hello)))
    lst = {"op": "list", "id": 1}
    out.append(control_vec("list request", "client", lst))
    out.append(control_vec("list reply", "server", exchange(lst)))
    st = {"op": "stat", "id": 2, "name": "hello.txt"}
    out.append(control_vec("stat request", "client", st))
    out.append(control_vec("stat reply", "server", exchange(st)))
    get = {"op": "get", "id": 3, "name": "hello.txt", "offset": 0}
    out.append(control_vec("get request", "client", get))
    c.send(get)
    out.append(control_vec("get reply", "server", c.recv_frame().json()))
    f = c.recv_frame()
    assert f.is_data
    out.append(data_vec("data frame (server, get)", "server", f.payload,
                        "the 5 bytes of hello.txt"))
    out.append(control_vec("get trailer", "server", c.recv_frame().json(),
                           "sha256 of the whole file, as sha256sum prints it"))
    get2 = {"op": "get", "id": 4, "name": "hello.txt", "offset": 5}
    out.append(control_vec("get request at the end", "client", get2,
                           "offset may equal the size"))
    c.send(get2)
    out.append(control_vec("get reply at the end", "server",
                           c.recv_frame().json()))
    out.append(control_vec("get trailer at the end", "server",
                           c.recv_frame().json(),
                           "no data frame before it; still the whole-file hash"))

    # Upload "abc" in two tries: put, 1 byte, abort (kept), put resume, rest.
    put = {"op": "put", "id": 5, "name": "abc.txt", "size": 3, "resume": False}
    out.append(control_vec("put request", "client", put))
    r = exchange(put)
    r["token"] = TOKEN
    out.append(control_vec("put reply", "server", r))
    c.send_data(b"a")
    out.append(data_vec("data frame (client, put)", "client", b"a"))
    ab = {"op": "abort", "id": 5, "discard": False}
    out.append(control_vec("abort request", "client", ab))
    out.append(control_vec("abort reply", "server", exchange(ab),
                           "kept: the byte stays for a resume"))
    put2 = {"op": "put", "id": 6, "name": "abc.txt", "size": 3, "resume": True}
    out.append(control_vec("put request with resume", "client", put2))
    r = exchange(put2)
    r["token"] = TOKEN
    assert r["prefix_sha256"] == hashlib.sha256(b"a").hexdigest()
    out.append(control_vec("put reply with prefix_sha256", "server", r,
                           "offset 1; prefix_sha256 = sha256(b'a')"))
    c.send_data(b"bc")
    out.append(data_vec("data frame (client, rest of put)", "client", b"bc"))
    out.append(data_vec("empty data frame", "client", b"",
                        "legal, carries nothing"))
    c.send_data(b"")
    com = {"op": "commit", "id": 6,
           "sha256": hashlib.sha256(b"abc").hexdigest()}
    out.append(control_vec("commit request", "client", com,
                           "sha256 of the whole file, id of the put"))
    r = exchange(com)
    r["mtime"] = MTIME
    out.append(control_vec("commit reply", "server", r))
    nf = {"op": "stat", "id": 7, "name": "missing.txt"}
    out.append(control_vec("stat request for a missing file", "client", nf))
    out.append(control_vec("error reply not_found", "server", exchange(nf)))
    # Section 5: names that could pass for another are refused, one vector
    # per kind, then NFD against NFC of the same text.
    for rid, (what, name) in enumerate([
            ("a C1 control U+009B (Cc)", "x\u009b31m.txt"),
            ("a right-to-left override U+202E (Cf)", "invoice\u202efdp.exe"),
            ("a zero-width space U+200B (Cf)", "pay\u200bpal.txt"),
            ("a line separator U+2028 (Zl)", "a\u2028b.txt"),
            ("a paragraph separator U+2029 (Zp)", "a\u2029b.txt"),
            ("a private-use character U+E000 (Co)", "a\ue000.txt"),
            ("an unassigned code point U+0378 (Cn)", "a\u0378.txt"),
            ("a Hangul filler U+3164 (default-ignorable)", "a\u3164b.txt"),
            ("cafe.txt in NFD (e, U+0301)", "cafe\u0301.txt")], start=8):
        req = {"op": "stat", "id": rid, "name": name}
        out.append(control_vec("stat request for a name with " + what,
                               "client", req))
        out.append(control_vec("error reply invalid_name for " + what,
                               "server", exchange(req),
                               "the message names the code point, or the "
                               "NFC form"))
    nfc = {"op": "stat", "id": 17, "name": "caf\u00e9.txt"}
    out.append(control_vec("stat request for cafe.txt in NFC (U+00E9)",
                           "client", nfc, "a valid name; no such file here"))
    out.append(control_vec("error reply not_found for cafe.txt in NFC",
                           "server", exchange(nfc)))
    not_json = fw.frame(fw.KIND_CONTROL, b"hello")
    out.append(invalid_vec("control payload that is not JSON", not_json,
                           "control", "bad_json",
                           "the connection stays open"))
    c.send_raw(not_json)
    out.append(control_vec("error reply with id null", "server",
                           c.recv_frame().json(),
                           "answer to a control frame that is not JSON"))
    c.close()
    c = fw.Client("127.0.0.1", port)
    v2_hello = sorted_obj(exchange({"op": "hello", "id": 0, "version": 2,
                                    "client": "ferry/0.1.0"}))
    assert v2_hello["version"] == 2, v2_hello
    c.close()
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(root, ignore_errors=True)
    out += version2_vectors(v2_hello)

    out.append(invalid_vec("unknown frame kind", bytes.fromhex("0300000000"),
                           None, "bad_frame",
                           "kind byte 0x03; the connection is closed"))
    out.append(invalid_vec("control frame over the default limit (header only)",
                           bytes.fromhex("0100010001"), "control",
                           "frame_too_large",
                           "length 65537 > 65536; refused from the header "
                           "alone, then closed"))
    out.append(invalid_vec("data frame over the limit (header only)",
                           bytes.fromhex("0201000001"), "data",
                           "frame_too_large",
                           "length 16777217 > 16777216; refused from the "
                           "header alone, then closed"))
    out.append(invalid_vec("control payload that is a JSON array",
                           fw.frame(1, b"[1,2]"), "control", "bad_json",
                           "must be one JSON object"))
    out.append(invalid_vec("control payload that is not UTF-8",
                           fw.frame(1, b'{"op":"list","id":1,"x":"\xff"}'),
                           "control", "bad_json", "JSON text must be UTF-8"))
    out.append(invalid_vec("control payload with a NUL after the object",
                           fw.frame(1, b'{"op":"stats","id":5}\x00'
                                       b'{"op":"list","id":6}'),
                           "control", "bad_json",
                           "only whitespace may follow the object; never "
                           "answered as the stats before the NUL"))
    out.append(invalid_vec("control payload that repeats a key",
                           fw.frame(1, b'{"op":"stat","id":5,"name":"a",'
                                       b'"name":"b"}'),
                           "control", "bad_json",
                           "a key appears once per object, at any depth"))

    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote %d vectors to %s" % (len(out), os.path.normpath(args.out)))
    n = rewrite_worked_example(os.path.join(HERE, "..", "..", "docs", "PROTOCOL.md"), out)
    print("rewrote %d hex dumps in docs/PROTOCOL.md" % n)


if __name__ == "__main__":
    main()
