#!/usr/bin/python3
"""What the scale-out layers cost (docs/BENCHMARKS.md, "Scale-out"), in one run:

- aggregate download and upload throughput of CLIENTS clients at once
  (each one connection: hello, then a get of one shared file, or a put of
  a file of its own, verified by SHA-256) against
    local:   one ferryd on the local disk,
    proxy-1: HAProxy with one backend, a ferryd on a GlusterFS FUSE mount,
    proxy-2: HAProxy with two backends, one ferryd per mount;
- one client's get and put of BIG bytes against the local ferryd and a
  ferryd on the FUSE mount, as seconds per GiB: the FUSE + GlusterFS
  overhead per GiB.

The cluster is test/scaleout's (cluster.py): a replica-2 volume on one
machine, so every byte written goes to two bricks on the same disk.

Standard library only; needs root, glusterfs-server and haproxy.
Usage: bench/scaleout.py --ferryd build/server/ferryd [--clients 200]
       [--size 1048576] [--big 268435456] [--rounds 3]"""

import argparse
import asyncio
import hashlib
import json
import os
import resource
import shutil
import statistics
import struct
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "test", "scaleout"))
sys.path.insert(0, os.path.join(here, "..", "test"))
import cluster  # noqa: E402
import harness  # noqa: E402

CONTROL, DATA = 1, 2
CHUNK = 256 * 1024


def control(obj):
    payload = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">BI", CONTROL, len(payload)) + payload


async def read_frame(reader):
    kind, size = struct.unpack(">BI", await reader.readexactly(5))
    payload = await reader.readexactly(size)
    return kind, (json.loads(payload) if kind == CONTROL else payload)


async def expect_ok(reader):
    kind, body = await read_frame(reader)
    if kind != CONTROL or not body.get("ok"):
        raise RuntimeError(f"refused: {body}")
    return body


async def one_get(port, name, digest):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(control({"op": "hello", "id": 1, "version": 1}) +
                     control({"op": "get", "id": 2, "name": name}))
        await expect_ok(reader)
        await expect_ok(reader)
        hasher, total = hashlib.sha256(), 0
        while True:
            kind, body = await read_frame(reader)
            if kind == DATA:
                hasher.update(body)
                total += len(body)
                continue
            if not body.get("ok") or body["sha256"] != hasher.hexdigest() or hasher.hexdigest() != digest:
                raise RuntimeError(f"get failed: {body}")
            return total
    finally:
        writer.close()


async def one_put(port, name, data, digest):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(control({"op": "hello", "id": 1, "version": 1}) +
                     control({"op": "put", "id": 2, "name": name, "size": len(data)}))
        await expect_ok(reader)
        await expect_ok(reader)
        for at in range(0, len(data), CHUNK):
            piece = data[at:at + CHUNK]
            writer.write(struct.pack(">BI", DATA, len(piece)) + piece)
            await writer.drain()
        writer.write(control({"op": "commit", "id": 2, "sha256": digest}))
        done = await expect_ok(reader)
        if done["sha256"] != digest:
            raise RuntimeError(f"put failed: {done}")
        return len(data)
    finally:
        writer.close()


async def crowd(make, clients):
    started = time.monotonic()
    sizes = await asyncio.wait_for(asyncio.gather(*(make(i) for i in range(clients))), timeout=600)
    return sum(sizes) / (time.monotonic() - started)


def aggregate(port, clients, size, rounds, tag):
    """Median download and upload MB/s of CLIENTS clients through PORT."""
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    asyncio.run(one_put(port, f"shared-{tag}.bin", data, digest))
    gets, puts = [], []
    for r in range(rounds):
        gets.append(asyncio.run(crowd(lambda i: one_get(port, f"shared-{tag}.bin", digest), clients)))
        puts.append(asyncio.run(crowd(lambda i: one_put(port, f"up-{tag}-{r}-{i}.bin", data, digest), clients)))
    return statistics.median(gets) / 1e6, statistics.median(puts) / 1e6


def seconds_per_gib(port, big, rounds, tag):
    """Median seconds per GiB of one client's get and put of BIG bytes."""
    data = os.urandom(big)
    digest = hashlib.sha256(data).hexdigest()
    gets, puts = [], []
    for r in range(rounds):
        started = time.monotonic()
        asyncio.run(one_put(port, f"big-{tag}.bin", data, digest))
        puts.append((time.monotonic() - started) * (1 << 30) / big)
        started = time.monotonic()
        asyncio.run(one_get(port, f"big-{tag}.bin", digest))
        gets.append((time.monotonic() - started) * (1 << 30) / big)
    return statistics.median(gets), statistics.median(puts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferryd", required=True)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--big", type=int, default=256 << 20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ferryd = os.path.abspath(args.ferryd)

    # Every client comes from 127.0.0.1: the per-address limits must let
    # all of them in at once.
    limits = ("--max-transfers", "4096", "--max-transfers-per-address", "4096",
              "--max-connections-per-address", "4096")
    local_root = tempfile.mkdtemp(prefix="ferry-bench-local-")
    c = cluster.Cluster(ferryd, backend_args=limits)
    local = harness.Server(ferryd, local_root, "--workers", "2", *limits)
    try:
        results = {}
        results["local"] = aggregate(local.port, args.clients, args.size, args.rounds, "local")
        c.haproxy_command("disable server ferryd/b2")
        c.wait_backends({"b1": "UP"})
        results["proxy-1"] = aggregate(c.proxy_port, args.clients, args.size, args.rounds, "p1")
        c.haproxy_command("enable server ferryd/b2")
        c.wait_backends({"b1": "UP", "b2": "UP"})
        results["proxy-2"] = aggregate(c.proxy_port, args.clients, args.size, args.rounds, "p2")
        per_gib = {"local": seconds_per_gib(local.port, args.big, args.rounds, "local"),
                   "fuse": seconds_per_gib(c.ports[0], args.big, args.rounds, "fuse")}
    finally:
        local.stop()
        c.close()
        shutil.rmtree(local_root, ignore_errors=True)

    base_get, base_put = results["local"]
    print(f"{args.clients} clients, {args.size} B each, median of {args.rounds} rounds (MB/s; ratio to local)")
    print("| setup | download MB/s | ratio | upload MB/s | ratio |")
    print("|---|---|---|---|---|")
    for name, (down, up) in results.items():
        print(f"| {name} | {down:.0f} | {down / base_get:.2f} | {up:.0f} | {up / base_put:.2f} |")
    print(f"\none client, {args.big >> 20} MiB, median of {args.rounds} (seconds per GiB)")
    print("| | get s/GiB | put s/GiB |")
    print("|---|---|---|")
    for name, (g, p) in per_gib.items():
        print(f"| {name} | {g:.2f} | {p:.2f} |")
    g_over = per_gib["fuse"][0] - per_gib["local"][0]
    p_over = per_gib["fuse"][1] - per_gib["local"][1]
    print(f"| FUSE + GlusterFS overhead | +{g_over:.2f} ({per_gib['fuse'][0] / per_gib['local'][0]:.1f}x) "
          f"| +{p_over:.2f} ({per_gib['fuse'][1] / per_gib['local'][1]:.1f}x) |")


if __name__ == "__main__":
    main()
