#!/usr/bin/env python3
"""Per-file C2PA validation time of the reference reader (c2pa-python, which bundles c2pa-rs)
on the given files: each file is read (Reader + JSON report) REPEAT times after one unmeasured
read; prints the mean and median per file and one "RESULT {json}" line.

Usage: c2pa_reference.py [--repeat N] FILE...
"""
import argparse
import json
import statistics
import time

import c2pa


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    per_file = []
    states = {}
    for path in a.files:
        with c2pa.Reader(path) as r:  # warm-up (file cache, library init)
            r.json()
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            with c2pa.Reader(path) as r:
                report = json.loads(r.json())
            times.append((time.perf_counter() - t0) * 1000.0)
        st = report.get("validation_state", "?")
        states[st] = states.get(st, 0) + 1
        per_file.append(statistics.median(times))
    res = {
        "files": len(per_file),
        "mean_ms": round(statistics.mean(per_file), 3),
        "median_ms": round(statistics.median(per_file), 3),
        "validation_states": states,
        "c2pa_python": getattr(c2pa, "__version__", "?"),
    }
    print(
        f"c2pa-python {res['c2pa_python']}: {res['mean_ms']} ms/file mean, "
        f"{res['median_ms']} ms median over {res['files']} files ({states})"
    )
    print("RESULT " + json.dumps(res))


if __name__ == "__main__":
    main()
