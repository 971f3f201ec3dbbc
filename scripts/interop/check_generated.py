#!/usr/bin/env python3
"""Interop check of media Hallmark generated itself (issue 21): each file must validate in the
reference C2PA reader (c2pa-python) with a `c2pa.created` action, digitalSourceType
trainedAlgorithmicMedia, a softwareAgent naming GENERATOR with `version` ending in
`sha256:MODEL_SHA256`, an `io.hallmark.generation` assertion holding the same model hash and
(for speech) the SHA-256 of TEXT as its input, and a Hallmark soft binding.

Usage: check_generated.py --generator NAME --model-sha256 HEX [--text TEXT] FILE [FILE ...]
Exits non-zero on any failure.
"""
import argparse
import hashlib
import json
import sys

import c2pa

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def check(path, generator, model_sha, text):
    with c2pa.Reader(path) as reader:
        store = json.loads(reader.json())
    active = store["manifests"][store["active_manifest"]]
    problems = []
    state = store.get("validation_state")
    if state not in ("Valid", "Trusted"):
        failures = store.get("validation_results", {}).get("activeManifest", {}).get("failure", [])
        problems.append(f"validation_state={state} failures={failures}")
    assertions = active.get("assertions", [])
    actions = [a for x in assertions if x["label"].startswith("c2pa.actions") for a in x["data"].get("actions", [])]
    created = [a for a in actions if a.get("action") == "c2pa.created"]
    if not created or created[0].get("digitalSourceType") != TRAINED:
        problems.append(f"no c2pa.created with trainedAlgorithmicMedia: {actions}")
    else:
        agent = created[0].get("softwareAgent") or {}
        if agent.get("name") != generator or not str(agent.get("version", "")).endswith("sha256:" + model_sha):
            problems.append(f"softwareAgent {agent} does not name {generator} and its model hash")
    gen = [x["data"] for x in assertions if x["label"].startswith("io.hallmark.generation")]
    if len(gen) != 1:
        problems.append(f"expected one io.hallmark.generation assertion, got {len(gen)}")
    else:
        g = gen[0]
        if g.get("model", {}).get("sha256") != model_sha:
            problems.append(f"generation model {g.get('model')} lacks sha256 {model_sha}")
        if text is not None:
            want = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if g.get("input", {}).get("sha256") != want:
                problems.append(f"generation input {g.get('input')} is not sha256(text) {want}")
            if text in json.dumps(store, ensure_ascii=False):
                problems.append("the manifest holds the text itself")
    if not any(x["label"].startswith("c2pa.soft-binding") for x in assertions):
        problems.append("no c2pa.soft-binding assertion")
    print(f"{path}: state={state} agent={created[0].get('softwareAgent') if created else None}"
          + (" FAIL: " + "; ".join(problems) if problems else " OK"))
    return not problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generator", required=True)
    ap.add_argument("--model-sha256", required=True)
    ap.add_argument("--text")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    ok = all([check(f, a.generator, a.model_sha256, a.text) for f in a.files])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
