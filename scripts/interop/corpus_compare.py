#!/usr/bin/env python3
"""Compares Hallmark's C2PA verdicts with the reference reader's, file by file.

Usage: corpus_compare.py HALLMARK_BIN CORPUS_C2PA_DIR

For every file listed in ORACLE.json, under both oracle profiles (`default`: no trust anchors;
`test_trust`: the corpus's test anchors, allowed list and EKU config), the reference reader
(c2pa-python, live, this run) and Hallmark (`hallmark verify --json`, the service's own code
path including the sandboxed validator) each give a validation state, or a read error when no
report is possible. They must agree file by file. The one accepted difference: files the oracle
marks `oracles_agree=false` -- cases where c2pa-rs 0.90.22 (Hallmark's and c2patool's library)
and 0.91.3 (bundled in c2pa-python) disagree -- where Hallmark must instead match the oracle's
answer of c2patool 0.27.22, which uses Hallmark's c2pa-rs version. Exits non-zero on any other
difference.
"""
import json
import os
import subprocess
import sys
import tempfile

import c2pa

binary, corpus = sys.argv[1], sys.argv[2]
oracle = json.load(open(os.path.join(corpus, "ORACLE.json")))["files"]
trust_dir = os.path.join(corpus, "trust")


def read(path):
    return open(path).read()


PROFILES = {
    "default": {"verify": {"remote_manifest_fetch": False}},
    "test_trust": {
        "verify": {"remote_manifest_fetch": False},
        "trust": {
            "trust_anchors": read(os.path.join(trust_dir, "test_cert_root_bundle.pem")),
            "allowed_list": read(os.path.join(trust_dir, "allowed_list.pem")),
            "trust_config": read(os.path.join(trust_dir, "store.cfg")),
        },
    },
}
HALLMARK_ENV = {
    "default": {},
    "test_trust": {
        "HALLMARK__C2PA__TRUST_ANCHORS": os.path.join(trust_dir, "test_cert_root_bundle.pem"),
        "HALLMARK__C2PA__ALLOWED_LIST": os.path.join(trust_dir, "allowed_list.pem"),
        "HALLMARK__C2PA__ALLOWED_EKUS": os.path.join(trust_dir, "store.cfg"),
    },
}


def reference(path, profile):
    try:
        ctx = c2pa.Context.from_json(json.dumps(PROFILES[profile]))
        if path.endswith(".c2pa"):
            # A standalone manifest store (sidecar), read as such, as Hallmark does.
            with open(path, "rb") as f, c2pa.Reader("application/c2pa", f, context=ctx) as r:
                return json.loads(r.json()).get("validation_state") or "no_report"
        with c2pa.Reader(path, context=ctx) as r:
            return json.loads(r.json()).get("validation_state") or "no_report"
    except Exception:  # the reader produced no report at all
        return "read_error"


def hallmark(path, profile, data):
    env = dict(os.environ, HALLMARK__STORAGE__DATA_DIR=data, HALLMARK_LOG="error",
               HALLMARK__DETECTORS__ENABLED="false", HALLMARK__GENERATORS__ENABLED="false",
               **HALLMARK_ENV[profile])
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    p = subprocess.run([binary, "verify", "--json", path], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        # No manifest and undecodable media: Hallmark answers 422 corrupt_media, i.e. no report.
        return "read_error" if "(corrupt_media)" in p.stderr else "unsupported"
    c = json.loads(p.stdout)["c2pa"]
    return c.get("validation_state") or "read_error"


def main():
    agree = explained = differ = skipped = 0
    with tempfile.TemporaryDirectory() as data:
        for rel, entry in sorted(oracle.items()):
            path = os.path.join(corpus, rel)
            for profile in ("default", "test_trust"):
                ours = hallmark(path, profile, data)
                if ours == "unsupported":
                    skipped += 1
                    print(f"{rel} [{profile}]: hallmark verify refused it (not a media upload)")
                    continue
                ref = reference(path, profile)
                same_lib = entry.get("oracles", {}).get("c2patool-0.27.22 (c2pa-rs 0.90.22)", {})
                expected = same_lib.get(profile, {}).get("validation_state") or "read_error"
                if ours == ref:
                    agree += 1
                elif entry.get("oracles_agree") is False or entry["expected"].get(
                        "basis", "both oracles agree") != "both oracles agree":
                    if ours == expected:
                        explained += 1
                        print(f"{rel} [{profile}]: hallmark={ours} reference={ref} "
                              f"(c2pa-rs 0.90 vs 0.91 disagree; matches c2patool's {expected})")
                    else:
                        differ += 1
                        print(f"DIFF {rel} [{profile}]: hallmark={ours} reference={ref} expected={expected}")
                else:
                    differ += 1
                    print(f"DIFF {rel} [{profile}]: hallmark={ours} reference={ref}")
    print(f"corpus verdicts vs reference reader: {agree} agree, {explained} version-dependent "
          f"(explained), {differ} differ, {skipped} not media uploads")
    sys.exit(1 if differ else 0)


main()
