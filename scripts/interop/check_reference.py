#!/usr/bin/env python3
"""Interop check: files signed by Hallmark must validate in the reference C2PA reader.

Usage: check_reference.py [--mode NAME] [--expect-alg ALG] [--expect-time-stamp]
                          ORIGINAL SIGNED [ORIGINAL SIGNED ...]
       check_reference.py --table RESULTS   (mode x format table from earlier runs' output)

For each signed file, the reference reader (c2pa-python, which bundles c2pa-rs) must report:
a validation state of Valid or Trusted, `claimSignature.validated` among the active manifest's
success codes, and a `c2pa.created` action with digitalSourceType trainedAlgorithmicMedia.
When the original itself carried a C2PA manifest, the signed file must instead record
`c2pa.edited` with compositeWithTrainedAlgorithmicMedia and show the original as a `parentOf`
ingredient. For images, the PSNR of signed vs original must be >= 38 dB. With --expect-alg the
signature algorithm must match; with --expect-time-stamp the reference reader must report a
signing time from the RFC 3161 token. A `c2pa.training-mining` assertion must be present (the
interop run requests one), and a `c2pa.soft-binding` naming Hallmark's watermark as the C2PA
Soft Binding Resolution API expects: `alg` one of Hallmark's algorithm names for the media, a
block whose `value` is base64 of the payload (8 bytes for images, 4 for audio), which a client
passes to /v1/matches/byBinding unchanged. Exits non-zero on any failure.
"""
import base64
import binascii
import json
import math
import sys

import numpy as np
from PIL import Image

import c2pa

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")
# Soft binding algorithm -> payload bytes (provenance/src/soft_binding.rs).
WATERMARK_ALGS = {"io.hallmark.watermark.image.v1": 8, "io.hallmark.watermark.audio.v2": 4}


def soft_binding_problems(assertions, is_image):
    bindings = [a["data"] for a in assertions if a["label"].startswith("c2pa.soft-binding")]
    if len(bindings) != 1:
        return [f"expected one c2pa.soft-binding assertion, got {len(bindings)}"]
    data = bindings[0]
    alg = data.get("alg")
    want = "io.hallmark.watermark.image.v1" if is_image else "io.hallmark.watermark.audio.v2"
    if alg != want:
        return [f"soft binding alg {alg!r} != {want!r}"]
    blocks = data.get("blocks", [])
    if len(blocks) != 1:
        return [f"soft binding has {len(blocks)} blocks, expected 1"]
    try:
        raw = base64.b64decode(blocks[0].get("value", ""), validate=True)
    except (binascii.Error, ValueError):
        return [f"soft binding value {blocks[0].get('value')!r} is not base64"]
    if len(raw) != WATERMARK_ALGS[alg]:
        return [f"soft binding value decodes to {len(raw)} bytes, expected {WATERMARK_ALGS[alg]}"]
    return []


def psnr(a_path, b_path):
    a = np.asarray(Image.open(a_path).convert("RGB"), dtype=np.float64)
    b = np.asarray(Image.open(b_path).convert("RGB"), dtype=np.float64)
    if a.shape != b.shape:
        raise SystemExit(f"{b_path}: size changed {a.shape} -> {b.shape}")
    mse = np.mean((a - b) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def has_manifest(path):
    try:
        with c2pa.Reader(path) as reader:
            return bool(json.loads(reader.json()).get("active_manifest"))
    except Exception:  # no manifest, or unreadable: not a parent with provenance
        return False


def check(original, signed, mode="-", expect_alg=None, expect_ts=False):
    parent = has_manifest(original)
    with c2pa.Reader(signed) as reader:
        store = json.loads(reader.json())
    state = store.get("validation_state")
    active = store["manifests"][store["active_manifest"]]
    results = store.get("validation_results", {}).get("activeManifest", {})
    success = [s["code"] for s in results.get("success", [])]
    failure = [s["code"] for s in results.get("failure", [])]
    actions = []
    for a in active.get("assertions", []):
        if a["label"].startswith("c2pa.actions"):
            actions.extend(a["data"].get("actions", []))
    created = [a for a in actions if a.get("action") == "c2pa.created"]
    problems = []
    if state not in ("Valid", "Trusted"):
        problems.append(f"validation_state={state} failures={failure}")
    if "claimSignature.validated" not in success:
        problems.append(f"claimSignature.validated missing (success={success})")
    if parent:
        edited = [a for a in actions if a.get("action") == "c2pa.edited"]
        ingredients = active.get("ingredients", [])
        if not edited or edited[0].get("digitalSourceType") != COMPOSITE:
            problems.append(f"no c2pa.edited with compositeWithTrainedAlgorithmicMedia: {actions}")
        if not any(i.get("relationship") == "parentOf" for i in ingredients):
            problems.append(f"original not kept as parentOf ingredient: {ingredients}")
    elif not created or created[0].get("digitalSourceType") != TRAINED:
        problems.append(f"no c2pa.created with trainedAlgorithmicMedia: {actions}")
    sig = active.get("signature_info", {})
    if expect_alg and str(sig.get("alg", "")).lower() != expect_alg.lower():
        problems.append(f"signature alg {sig.get('alg')} != {expect_alg}")
    if expect_ts and not sig.get("time"):
        problems.append(f"no RFC 3161 signing time in signature_info {sig}")
    labels = [a["label"] for a in active.get("assertions", [])]
    if not any(l.startswith("c2pa.training-mining") for l in labels):
        problems.append(f"no c2pa.training-mining assertion: {labels}")
    problems += soft_binding_problems(active.get("assertions", []), signed.lower().endswith(IMAGE_EXT))
    line = f"{signed}: state={state} time={sig.get('time')} alg={active.get('signature_info', {}).get('alg')} generator={active.get('claim_generator_info', [{}])[0].get('name')}"
    if signed.lower().endswith(IMAGE_EXT):
        q = psnr(original, signed)
        line += f" psnr={q:.2f}dB"
        if q < 38.0:
            problems.append(f"PSNR {q:.2f} dB < 38 dB")
    if parent:
        line += " parentOf-ingredient"
    print(line + (" FAIL: " + "; ".join(problems) if problems else " OK"))
    kind = "parent" if parent else signed.rsplit(".", 1)[-1].lower()
    print(f"RESULT {mode} {kind} {'FAIL' if problems else 'OK'}")
    return not problems


def table(path):
    rows, cols = {}, []
    with open(path) as f:
        for line in f:
            if line.startswith("RESULT "):
                _, mode, kind, res = line.split()
                rows.setdefault(mode, {})[kind] = res
                if kind not in cols:
                    cols.append(kind)
    print("reference reader (c2pa-python) verdicts, signing mode x format:")
    print(f"{'mode':<12}" + "".join(f"{c:>8}" for c in cols))
    for mode, r in rows.items():
        print(f"{mode:<12}" + "".join(f"{r.get(c, '-'):>8}" for c in cols))
    bad = sum(v != "OK" for r in rows.values() for v in r.values())
    total = sum(len(r) for r in rows.values())
    print(f"{total - bad}/{total} combinations valid in the reference reader")
    sys.exit(1 if bad else 0)


def main():
    args = sys.argv[1:]
    if args[:1] == ["--table"] and len(args) == 2:
        table(args[1])
    mode, expect_alg, expect_ts = "-", None, False
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag == "--mode":
            mode = args.pop(0)
        elif flag == "--expect-alg":
            expect_alg = args.pop(0)
        elif flag == "--expect-time-stamp":
            expect_ts = True
        else:
            raise SystemExit(__doc__)
    if not args or len(args) % 2:
        raise SystemExit(__doc__)
    ok = all([check(args[i], args[i + 1], mode, expect_alg, expect_ts)
              for i in range(0, len(args), 2)])
    print(f"reference reader: {len(args) // 2} files, {'all valid' if ok else 'FAILURES'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
