#!/usr/bin/env python3
"""Closed-loop HTTP load client for Hallmark benchmarks (Python standard library only).

Subcommands:
  verify   C clients POST files to /v1/verify back to back for S seconds (after a warm-up);
           prints req/s, p50/p90/p99 latency and the status counts.
  c2pa     verifies each file once, one at a time, and reads Hallmark's own C2PA validation
           time per file from /metrics (hallmark_stage_duration_seconds{stage="c2pa_validation"}).
  mixed    soak traffic at a fixed rate R req/s for S seconds: sign, verify of signed, unsigned
           and hostile files, decisions; every INTERVAL s prints errors and the server's RSS.

Output: human-readable lines plus one final JSON line (prefix "RESULT ").
"""
import argparse
import glob
import http.client
import itertools
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse
import uuid


def conn_for(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def post(conn, path, key, body, content_type, headers=None):
    h = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
    h.update(headers or {})
    conn.request("POST", path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def load_files(patterns):
    paths = sorted(itertools.chain.from_iterable(glob.glob(p) for p in patterns))
    if not paths:
        sys.exit("no input files")
    return [(p, open(p, "rb").read()) for p in paths]


def cmd_verify(a):
    files = load_files(a.files)
    counter = itertools.count()
    lock = threading.Lock()
    samples = []  # (t_end, latency_s, status)
    stop_at = time.monotonic() + a.warmup + a.seconds
    t_measure = time.monotonic() + a.warmup

    def client():
        conn = conn_for(a.base)
        while True:
            t0 = time.monotonic()
            if t0 >= stop_at:
                break
            _, body = files[next(counter) % len(files)]
            try:
                status, _ = post(conn, "/v1/verify", a.key, body, "image/jpeg")
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = conn_for(a.base)
            t1 = time.monotonic()
            with lock:
                samples.append((t1, t1 - t0, status))

    threads = [threading.Thread(target=client) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    measured = [s for s in samples if s[0] >= t_measure]
    lat = [s[1] * 1000.0 for s in measured]
    statuses = {}
    for s in measured:
        statuses[s[2]] = statuses.get(s[2], 0) + 1
    span = max(s[0] for s in measured) - t_measure if measured else float("nan")
    res = {
        "clients": a.clients,
        "files": len(files),
        "seconds": round(span, 2),
        "requests": len(measured),
        "req_per_s": round(len(measured) / span, 1) if measured else 0,
        "p50_ms": round(percentile(lat, 50), 1),
        "p90_ms": round(percentile(lat, 90), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "max_ms": round(max(lat), 1) if lat else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }
    print(
        f"verify: {res['requests']} requests in {res['seconds']} s with {a.clients} clients over "
        f"{len(files)} distinct files: {res['req_per_s']} req/s, p50 {res['p50_ms']} ms, "
        f"p90 {res['p90_ms']} ms, p99 {res['p99_ms']} ms, statuses {res['statuses']}"
    )
    print("RESULT " + json.dumps(res))


def stage_totals(base, stage, token=None):
    conn = conn_for(base)
    h = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request("GET", "/metrics", headers=h)
    text = conn.getresponse().read().decode()
    vals = {}
    for suffix in ("sum", "count"):
        m = re.search(
            r'^hallmark_stage_duration_seconds_%s\{[^}]*stage="%s"[^}]*\} (\S+)$' % (suffix, stage),
            text,
            re.M,
        )
        vals[suffix] = float(m.group(1)) if m else 0.0
    return vals["sum"], vals["count"]


def cmd_c2pa(a):
    files = load_files(a.files)
    conn = conn_for(a.base)
    # One unmeasured pass warms the workers.
    for _, body in files[:2]:
        post(conn, "/v1/verify", a.key, body, "image/jpeg")
    s0, c0 = stage_totals(a.base, "c2pa_validation")
    wall = []
    for _, body in files:
        t0 = time.monotonic()
        status, _ = post(conn, "/v1/verify", a.key, body, "image/jpeg")
        wall.append((time.monotonic() - t0) * 1000.0)
        if status != 201:
            sys.exit(f"verify answered {status}")
    s1, c1 = stage_totals(a.base, "c2pa_validation")
    n = c1 - c0
    res = {
        "files": len(files),
        "c2pa_stage_mean_ms": round((s1 - s0) / n * 1000.0, 2) if n else None,
        "verify_request_mean_ms": round(sum(wall) / len(wall), 2),
    }
    print(
        f"hallmark: C2PA validation stage {res['c2pa_stage_mean_ms']} ms/file (mean over {int(n)} "
        f"files, from /metrics); whole verify request {res['verify_request_mean_ms']} ms/file"
    )
    print("RESULT " + json.dumps(res))


def family(pid):
    """`pid` and its descendants (the server and its media worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def rss_kb(root_pid):
    """(server RSS, server + workers RSS) in KiB."""
    total, own = 0, 0
    for pid in family(root_pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        kb = int(line.split()[1])
                        total += kb
                        own = kb if pid == root_pid else own
        except OSError:
            pass
    return own, total


def cmd_mixed(a):
    signed = load_files(a.signed)
    unsigned = load_files(a.unsigned)
    hostile = load_files(a.hostile) if a.hostile else []
    to_sign = unsigned[: max(1, len(unsigned) // 4)]
    rng = random.Random(7)
    lock = threading.Lock()
    errors = []
    counts = {}
    verification_ids = []
    stop_at = time.monotonic() + a.seconds
    interval = 1.0 / a.rate
    next_slot = [time.monotonic()]

    def one():
        kind = rng.choices(
            ["sign", "verify_signed", "verify_unsigned", "verify_hostile", "decision"],
            weights=[1, 3, 3, 1 if hostile else 0, 2],
        )[0]
        return kind

    def worker():
        conn = conn_for(a.base)
        while True:
            with lock:
                slot = next_slot[0]
                next_slot[0] += interval
                kind = one()
            if slot >= stop_at:
                return
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                if kind == "sign":
                    name, body = rng.choice(to_sign)
                    boundary = uuid.uuid4().hex
                    meta = json.dumps({"model": "soak"})
                    form = (
                        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                        f"filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
                    ).encode() + body + (
                        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\""
                        f"\r\n\r\n{meta}\r\n--{boundary}--\r\n"
                    ).encode()
                    status, _ = post(
                        conn, "/v1/sign", a.key, form, f"multipart/form-data; boundary={boundary}"
                    )
                    ok = status == 200
                elif kind == "decision":
                    with lock:
                        vid = rng.choice(verification_ids) if verification_ids else None
                    if vid is None:
                        continue
                    body = json.dumps({"verification_id": vid, "action": "label", "policy": "soak"})
                    status, _ = post(
                        conn, "/v1/decisions", a.key, body.encode(), "application/json",
                        {"Idempotency-Key": uuid.uuid4().hex},
                    )
                    ok = status == 201
                else:
                    pool = {"verify_signed": signed, "verify_unsigned": unsigned,
                            "verify_hostile": hostile}[kind]
                    name, body = rng.choice(pool)
                    status, data = post(conn, "/v1/verify", a.key, body, "application/octet-stream")
                    if kind == "verify_hostile":
                        # A hostile file named `report_*` has a right answer that is a report
                        # on what is present (e.g. a WAV whose header claims 6 h but holds
                        # 4 KiB: 201 on the 4 KiB); every other one must get a 4xx.
                        if os.path.basename(name).startswith("report_"):
                            ok = status == 201
                        else:
                            ok = 400 <= status < 500
                    else:
                        ok = status == 201
                        if ok:
                            with lock:
                                if len(verification_ids) < 1000:
                                    verification_ids.append(json.loads(data)["id"])
            except (OSError, http.client.HTTPException) as e:
                status, ok = 0, False
                conn.close()
                conn = conn_for(a.base)
                kind = f"{kind} ({type(e).__name__})"
            with lock:
                counts[kind] = counts.get(kind, 0) + 1
                if not ok:
                    errors.append((time.monotonic(), kind, status))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.concurrency)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    samples = []
    while any(t.is_alive() for t in threads):
        time.sleep(min(a.interval, max(0.1, stop_at - time.monotonic())))
        el = time.monotonic() - t_start
        with lock:
            done = sum(counts.values())
            nerr = len(errors)
        own, total = rss_kb(a.pid)
        samples.append((round(el, 1), own, done, nerr, total))
        print(
            f"t={el:7.1f}s requests={done} errors={nerr} server rss={own / 1024:.1f} MiB "
            f"(with workers {total / 1024:.1f} MiB)",
            flush=True,
        )
        if el > a.seconds + 120:
            break
    warm = [s[1] for s in samples if s[0] >= a.warmup]
    res = {
        "seconds": a.seconds,
        "rate": a.rate,
        "requests": sum(counts.values()),
        "by_kind": counts,
        "errors": len(errors),
        "error_examples": errors[:10],
        "server_rss_mib_after_warmup": {
            "min": round(min(warm) / 1024, 1) if warm else None,
            "max": round(max(warm) / 1024, 1) if warm else None,
            "first": round(warm[0] / 1024, 1) if warm else None,
            "last": round(warm[-1] / 1024, 1) if warm else None,
        },
    }
    print("RESULT " + json.dumps(res))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--clients", type=int, default=4)
    v.add_argument("--seconds", type=float, default=30)
    v.add_argument("--warmup", type=float, default=5)
    c = sub.add_parser("c2pa")
    m = sub.add_parser("mixed")
    m.add_argument("--signed", nargs="+", required=True)
    m.add_argument("--unsigned", nargs="+", required=True)
    m.add_argument("--hostile", nargs="*", default=[])
    m.add_argument("--rate", type=float, default=20)
    m.add_argument("--seconds", type=float, default=1800)
    m.add_argument("--warmup", type=float, default=120)
    m.add_argument("--interval", type=float, default=30)
    m.add_argument("--concurrency", type=int, default=8)
    m.add_argument("--pid", type=int, required=True, help="the server's pid (RSS is sampled)")
    for sp in (v, c, m):
        sp.add_argument("--base", required=True)
        sp.add_argument("--key", default=os.environ.get("HALLMARK_API_KEY", ""))
    for sp in (v, c):
        sp.add_argument("files", nargs="+")
    a = p.parse_args()
    {"verify": cmd_verify, "c2pa": cmd_c2pa, "mixed": cmd_mixed}[a.cmd](a)


if __name__ == "__main__":
    main()
