#!/usr/bin/python3
"""Markdown tables of one compare.sh run: ferry beside the anchors, with the
ratios and targets of issue 5.

usage: compare_report.py RESULTS.jsonl [RESULTS.jsonl ...]
The files are the anchors' results.jsonl and ferry_bench.py's output (the
same shape: one JSON object per measurement, "w" the workload, "anchor" the
server). MB = 10^6 bytes; "median (min–max)" over the repetitions.
"""
import json
import statistics
import sys

REFS = ["vsftpd", "nginx", "nginx tcp_nopush=off", "pyftpdlib", "seed"]
FLAT_KIB = 2048   # F counts as flat when RSS moves less than this during the stall


def load(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def by(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def mmm(vals, fmt="%.0f"):
    """median (min–max), or the single value, or – for nothing."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    if len(vals) == 1:
        return fmt % vals[0]
    return "%s (%s–%s)" % (fmt % statistics.median(vals), fmt % min(vals), fmt % max(vals))


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "–"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def verdict(ok):
    return "–" if ok is None else ("**met**" if ok else "**missed**")


def main():
    rows = load(sys.argv[1:])
    meta = next((r for r in rows if r.get("w") == "meta"), {})
    fast = meta.get("fast_hash_args") or ""
    ferries = ["ferry"] + (["ferry %s" % fast] if fast else [])
    refs = [a for a in REFS if any(r.get("anchor") == a for r in rows)]
    cols = ferries + refs

    def good(w, a, **kw):
        return [r for r in by(rows, w=w, anchor=a, **kw) if r.get("ok") is not False]

    def okcount(w, a, **kw):
        rs = by(rows, w=w, anchor=a, **kw)
        return "%d/%d" % (len([r for r in rs if r.get("ok")]), len(rs)) if rs else "–"

    ncli = sorted({r["clients"] for r in rows if r.get("w") == "C" and r.get("anchor") == "ferry"})
    ref_ncli = next((r["clients"] for r in rows if r.get("w") == "C" and r.get("anchor") != "ferry"), None)

    def c_rows(a, n):
        # the anchors' burst is curl --parallel (seed: its own event-loop client)
        return [r for r in rows if r.get("w") == "C" and r.get("anchor") == a and r.get("clients") == n
                and str(r.get("variant", "")).startswith("burst")]

    def d_rows(a):
        return [r for r in rows if r.get("w") == "D" and r.get("anchor") == a
                and str(r.get("mode", "")).endswith("-session") and r.get("client", "").startswith(("loadgen", "ferry"))]

    def e_rows(a, n=None):
        return [r for r in rows if r.get("w") == "E" and r.get("anchor") == a and "asked" in r
                and (n is None or r["asked"] == n)]

    nidle = sorted({r["asked"] for r in e_rows("ferry")}, reverse=True)
    ref_nidle = next((r["asked"] for r in rows if r.get("w") == "E" and r.get("anchor") != "ferry" and "asked" in r), None)

    def disk_part(a):
        """Seconds per GiB the disk adds (fsyncs, writeback): B's time − Bt's."""
        b = med([r.get("secs") for r in good("B", a)])
        bt = med([r.get("secs") for r in good("Bt", a)])
        return [b - bt] if b is not None and bt is not None else []

    # ------------------------------------------------------------ side by side
    t = []

    def line(label, fn, fmt="%.0f", only=None):
        cells = []
        for a in cols:
            if only and a not in only:
                cells.append("–")
                continue
            v = fn(a)
            cells.append(v if isinstance(v, str) else mmm(v, fmt))
        t.append([label] + cells)

    def vs_ferry(w, key="MBps", sel=None):
        """ferry's median ÷ this column's median (same run)."""
        pick = sel or (lambda a: [r[key] for r in good(w, a)])
        f = med(pick("ferry"))
        return lambda a: "–" if a in ferries else ratio(f, med(pick(a)))

    line("A 1 GiB download, MB/s", lambda a: [r["MBps"] for r in good("A", a)])
    line("A: ferry ÷ this", vs_ferry("A"))
    line("A server CPU s", lambda a: [r["server_cpu_s"] for r in good("A", a)], "%.2f")
    line("A ok", lambda a: okcount("A", a))
    line("B 1 GiB upload, MB/s", lambda a: [r["MBps"] for r in good("B", a)])
    line("B: ferry ÷ this", vs_ferry("B"))
    line("B server CPU s", lambda a: [r["server_cpu_s"] for r in good("B", a)], "%.2f")
    line("B ok", lambda a: okcount("B", a))
    if any(r.get("w") == "Bt" for r in rows):
        line("Bt upload into a tmpfs folder, MB/s", lambda a: [r["MBps"] for r in good("Bt", a)], only=ferries)
        line("Bt server CPU s", lambda a: [r["server_cpu_s"] for r in good("Bt", a)], "%.2f", only=ferries)
        line("B − Bt: the disk's part, s per GiB", disk_part, "%.2f", only=ferries)
    for n in sorted(set(ncli) | ({ref_ncli} if ref_ncli else set())):
        def cr(a, n=n):
            return c_rows(a, n)
        line("C %d × 4 MiB burst: ok" % n,
             lambda a: ", ".join("%d/%d" % (r["ok"], r["clients"]) for r in cr(a)) or "–")
        line("C %d: wall s" % n, lambda a: [r["wall_s"] for r in cr(a)], "%.2f")
        line("C %d: aggregate MB/s" % n, lambda a: [r["MBps"] for r in cr(a)])
        line("C %d: ferry ÷ this (MB/s)" % n, vs_ferry("C", sel=lambda a, cr=cr: [r["MBps"] for r in cr(a)]))
        line("C %d: slowest ok s" % n, lambda a: [r.get("slowest_ok_s") for r in cr(a)], "%.2f")
        line("C %d: median ok s (ferry)" % n, lambda a: [r.get("median_ok_s") for r in cr(a)], "%.2f")
        line("C %d: connects ≥ 0.9 s (SYN resent; ferry)" % n, lambda a: [r.get("slow_connects") for r in cr(a)], "%d")
        line("C %d: server CPU s" % n, lambda a: [r["server_cpu_s"] for r in cr(a)], "%.2f")
        line("C %d: listen overflows" % n,
             lambda a: [r.get("tcp", {}).get("ListenOverflows", 0) for r in cr(a)], "%d")
    line("D list req/s (8 procs, session)", lambda a: [r["rps"] for r in d_rows(a)])
    line("D server CPU µs/req", lambda a: [r.get("server_cpu_us_per_req") for r in d_rows(a)])
    line("D: ferry ÷ this (CPU µs/req)", vs_ferry("D", sel=lambda a: [r.get("server_cpu_us_per_req") for r in d_rows(a)]))
    line("D errors", lambda a: ", ".join(str(r["errors"]) for r in d_rows(a)) or "–")

    # nginx under wrk (keep-alive, -c8: one request in flight per connection)
    # beside ferry under ferry-loadgen (8 sessions, the same): both clients
    # are compiled event loops, so this pair is the like-for-like one.
    def d_wrk(a):
        return [r for r in rows if r.get("w") == "D" and r.get("anchor") == a
                and str(r.get("mode", "")).startswith("wrk keep-alive, autoindex")]
    if any(d_wrk(a) for a in cols):
        line("D wrk keep-alive autoindex req/s", lambda a: [r["rps"] for r in d_wrk(a)])
        line("D wrk keep-alive autoindex: server CPU µs/req", lambda a: [r.get("server_cpu_us_per_req") for r in d_wrk(a)])
        line("D: ferry (its D row) ÷ this under wrk (CPU µs/req)",
             vs_ferry("D", sel=lambda a: [r.get("server_cpu_us_per_req") for r in (d_rows(a) if a == "ferry" else d_wrk(a))]))
    for n in sorted(set(nidle) | ({ref_nidle} if ref_nidle else set()), reverse=True):
        def er(a, n=n):
            return e_rows(a, n)
        line("E %d idle: held by server" % n,
             lambda a: ", ".join("%d/%d" % (r["server_held_estab"], r["asked"]) for r in er(a)) or "–")
        line("E %d: PSS KiB/conn" % n, lambda a: [r["pss_kb_per_conn"] for r in er(a)], "%.2f")
        line("E %d: ferry ÷ this (KiB/conn)" % n, vs_ferry("E", sel=lambda a, er=er: [r["pss_kb_per_conn"] for r in er(a)]))
        line("E %d: time to open s" % n, lambda a: [r["open_secs"] for r in er(a)], "%.1f")
    fr = [r for r in rows if r.get("w") == "F" and r.get("anchor") == "ferry"]
    if fr:
        gib = fr[0].get("file_bytes", 0) / (1 << 30)
        line("F %.0f GiB get, reader stalls: RSS MiB first → max → last" % gib,
             lambda a: "; ".join("%.1f → %.1f → %.1f" % (r["rss_kb_first"] / 1024, r["rss_kb_max"] / 1024,
                                                         r["rss_kb_last"] / 1024)
                                 for r in fr if r.get("rss_kb_first")) or "failed", only=["ferry"])
        line("F ferryd CPU s during the stall", lambda a: [r.get("server_cpu_during_stall_s") for r in fr],
             "%.2f", only=["ferry"])
        line("F ok (whole file after the stall, trailer checked)",
             lambda a: "%d/%d" % (len([r for r in fr if r.get("ok")]), len(fr)), only=["ferry"])
    print("### Ferry beside the references (median (min–max); MB = 10^6 B)\n")
    print(table(["workload"] + cols, t))
    if meta:
        print("\nferry's A downloads went to %s; fast integrity option: %s; ferryd flags: `%s`. The references "
              "ran C, D and E once (the anchors' script does); ferry ran every workload %d times."
              % (meta.get("download_sink", "?"), ("`%s`" % fast) if fast else "none in this client",
                 meta.get("ferryd_args", "?"),
                 max([r.get("rep", 1) for r in rows if r.get("anchor") == "ferry"] or [1])))

    # ------------------------------------------------------------ limits
    lim = []
    fa = {f: med([r["MBps"] for r in good("A", f)]) for f in ferries}
    fb = {f: med([r["MBps"] for r in good("B", f)]) for f in ferries}
    for a, w in (("iperf3", "I"), ("iperf3 -Z", "I"), ("openssl sha256 (1 core)", "S"), ("dd conv=fsync", "W")):
        m = med([r["MBps"] for r in good(w, a)])
        lim.append([a, mmm([r["MBps"] for r in good(w, a)])]
                   + ["%s / %s" % (ratio(fa[f], m), ratio(fb[f], m)) for f in ferries])
    print("\n### Limits of this machine, same run (MB/s), and ferry ÷ each\n")
    print(table(["measure", "MB/s"] + ["%s ÷ this: A / B" % f for f in ferries], lim))

    # ------------------------------------------------------------ targets
    sha = med([r["MBps"] for r in good("S", "openssl sha256 (1 core)")])
    ipz = med([r["MBps"] for r in good("I", "iperf3 -Z")])
    tt = []

    def best_ref(w):
        vals = [(med([r["MBps"] for r in good(w, a)]), a) for a in refs]
        vals = [v for v in vals if v[0] is not None]
        return max(vals) if vals else (None, "–")

    for w, what in (("A", "download"), ("B", "upload")):
        f = med([r["MBps"] for r in good(w, "ferry")])
        tt.append(["%s with SHA-256 ≥ 0.9 × single-core SHA-256" % w, "%s MB/s" % mmm([f]),
                   "SHA-256 %s MB/s" % mmm([sha]), ratio(f, sha),
                   verdict(None if f is None or not sha else f >= 0.9 * sha)])
        bv, ba = best_ref(w)
        tt.append(["%s (SHA-256) ÷ fastest reference, ÷ iperf3 -Z (for reference)" % w, "%s MB/s" % mmm([f]),
                   "%s %s; iperf3 -Z %s" % (ba, mmm([bv]), mmm([ipz])),
                   "%s; %s" % (ratio(f, bv), ratio(f, ipz)), "–"])
        if fast:
            ff = med([r["MBps"] for r in good(w, "ferry %s" % fast)])
            tt.append(["%s with %s faster than every reference" % (w, fast), "%s MB/s" % mmm([ff]),
                       "%s %s MB/s" % (ba, mmm([bv])), ratio(ff, bv),
                       verdict(None if ff is None or bv is None else ff > bv)])
            tt.append(["%s with %s ≥ 0.8 × iperf3 -Z" % (w, fast), "%s MB/s" % mmm([ff]),
                       "iperf3 -Z %s MB/s" % mmm([ipz]), ratio(ff, ipz),
                       verdict(None if ff is None or not ipz else ff >= 0.8 * ipz)])
        else:
            tt.append(["%s with the fast integrity option: > every reference, ≥ 0.8 × iperf3 -Z" % w,
                       "not measured: the client offers no fast hash yet", "–", "–", "–"])
    # issue 15, target 1: uploads with the fast hash, against vsftpd and the
    # disk's durable write speed of this run
    dd = med([r["MBps"] for r in good("W", "dd conv=fsync")])
    vb = med([r["MBps"] for r in good("B", "vsftpd")])
    vcpu = med([r["server_cpu_s"] for r in good("B", "vsftpd")])
    if fast and any(r.get("w") == "Bt" for r in rows):
        fb_ = med([r["MBps"] for r in good("B", "ferry %s" % fast)])
        ft = med([r["MBps"] for r in good("Bt", "ferry %s" % fast)])
        fcpu = med([r["server_cpu_s"] for r in good("B", "ferry %s" % fast)])
        tt.append(["B with %s into a tmpfs folder ≥ vsftpd's B" % fast, "%s MB/s" % mmm([ft]),
                   "vsftpd %s MB/s" % mmm([vb]), ratio(ft, vb),
                   verdict(None if ft is None or not vb else ft >= vb)])
        tt.append(["B with %s into the disk ≥ 0.95 × dd conv=fsync" % fast, "%s MB/s" % mmm([fb_]),
                   "dd %s MB/s" % mmm([dd]), ratio(fb_, dd),
                   verdict(None if fb_ is None or not dd else fb_ >= 0.95 * dd)])
        tt.append(["B with %s: ferryd CPU per GiB ≤ 1.2 × vsftpd's" % fast, "%s s" % mmm([fcpu], "%.2f"),
                   "vsftpd %s s" % mmm([vcpu], "%.2f"), ratio(fcpu, vcpu),
                   verdict(None if fcpu is None or not vcpu else fcpu <= 1.2 * vcpu)])
    for n in ncli:
        fc = c_rows("ferry", n)
        fm = med([r["MBps"] for r in fc])
        lost = sum(r["clients"] - r["ok"] for r in fc)
        tt.append(["C %d at once: no client lost" % n, "%d lost in %d runs" % (lost, len(fc)), "–", "–",
                   verdict(lost == 0 if fc else None)])
        if n == ref_ncli:
            vals = [(med([r["MBps"] for r in c_rows(a, n)]), a) for a in refs if c_rows(a, n)]
            bv, ba = max(vals) if vals else (None, "–")
            tt.append(["C %d faster than every reference (aggregate MB/s)" % n, "%s MB/s" % mmm([fm]),
                       "%s %s MB/s" % (ba, mmm([bv])), ratio(fm, bv),
                       verdict(None if fm is None or bv is None else fm > bv)])
    fd = med([r.get("server_cpu_us_per_req") for r in d_rows("ferry")])
    pd = med([r.get("server_cpu_us_per_req") for r in d_rows("pyftpdlib")])
    tt.append(["D server CPU per list ≤ 0.5 × pyftpdlib's", "%s µs" % mmm([fd]), "pyftpdlib %s µs" % mmm([pd]),
               ratio(fd, pd), verdict(None if fd is None or not pd else fd <= 0.5 * pd)])
    for n in nidle:
        er = e_rows("ferry", n)
        allheld = all(r["server_held_estab"] == n and r["greeted"] == n for r in er)
        kib = med([r["pss_kb_per_conn"] for r in er])
        ng = med([r["pss_kb_per_conn"] for r in e_rows("nginx")])
        tt.append(["E %d idle sessions all held, ≤ 1 KiB each" % n,
                   "%s; %s KiB/conn" % (", ".join("%d/%d" % (r["server_held_estab"], n) for r in er),
                                        mmm([kib], "%.2f")),
                   "nginx %s KiB/conn (at %s)" % (mmm([ng], "%.2f"), ref_nidle), ratio(kib, ng),
                   verdict(None if not er else allheld and kib <= 1.0)])
    if fr:
        moves = [(r["rss_kb_max"] - r["rss_kb_min"]) for r in fr if r.get("rss_kb_first")]
        tt.append(["F RSS flat while the reader stalls (moves < %d KiB)" % FLAT_KIB,
                   "moves %s KiB" % mmm(moves), "–", "–",
                   verdict(bool(moves) and max(moves) < FLAT_KIB and all(r.get("ok") for r in fr))])
    print("\n### Issue 5 targets (ratios within this run)\n")
    print(table(["target", "ferry", "compared with", "ratio", "verdict"], tt))


if __name__ == "__main__":
    main()
