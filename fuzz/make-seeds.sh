#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/seeds/ (small files, a few KB in all):
# images and audio with ffmpeg (every format the service sniffs and decodes), audit notes,
# checkpoints, receipts and a JSON Lines export signed with the fuzz targets' fixed log key
# (fuzz/src/lib.rs: LOG_NAME, LOG_SEED) with python3 + cryptography. Files named regress-*
# (inputs that once crashed a target, kept as seeds) are left alone.
set -euo pipefail
cd "$(dirname "$0")"
find seeds -type f ! -name "regress-*" -delete 2>/dev/null || true
mkdir -p seeds/media_image seeds/media_audio seeds/media_containers \
    seeds/audit_note seeds/audit_receipt seeds/multipart_form seeds/c2pa_read
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

img=seeds/media_image
ff -f lavfi -i testsrc=size=16x12:rate=1 -frames:v 1 "$img/testsrc.png"
ff -f lavfi -i testsrc=size=16x12:rate=1 -frames:v 1 -pix_fmt rgba "$img/rgba.png"
ff -f lavfi -i testsrc=size=16x12:rate=1 -frames:v 1 -pix_fmt gray16be "$img/gray16.png"
ff -f lavfi -i testsrc=size=16x12:rate=1 -frames:v 1 -q:v 5 "$img/baseline.jpg"
ff -f lavfi -i testsrc=size=16x12:rate=1 -frames:v 1 -pix_fmt gray "$img/gray.jpg"
ff -f lavfi -i testsrc=size=16x12:rate=1 -frames:v 2 -r 2 "$img/anim.gif"
ff -f lavfi -i testsrc=size=16x12:rate=1 -frames:v 1 "$img/rgb.tiff"
ff -f lavfi -i testsrc=size=16x12:rate=1 -frames:v 1 -compression_algo deflate "$img/deflate.tiff"
ff -f lavfi -i testsrc=size=16x12:rate=1 -frames:v 1 -c:v libwebp -lossless 1 "$img/lossless.webp"
ff -f lavfi -i testsrc=size=16x12:rate=1 -frames:v 1 -c:v libwebp -quality 50 "$img/lossy.webp"

aud=seeds/media_audio
sine() { echo "sine=frequency=440:sample_rate=$1:duration=$2"; }
ff -f lavfi -i "$(sine 8000 0.05)" -c:a pcm_s16le "$aud/s16.wav"
ff -f lavfi -i "$(sine 8000 0.05)" -ac 2 -c:a pcm_f32le "$aud/f32-stereo.wav"
ff -f lavfi -i "$(sine 8000 0.05)" -c:a pcm_u8 "$aud/u8.wav"
ff -f lavfi -i "$(sine 8000 0.05)" -c:a pcm_s24le "$aud/s24.wav"
ff -f lavfi -i "$(sine 8000 0.05)" -c:a adpcm_ima_wav "$aud/adpcm.wav"
ff -f lavfi -i "$(sine 8000 0.2)" -c:a libmp3lame -b:a 8k "$aud/cbr.mp3"
ff -f lavfi -i "$(sine 8000 0.1)" -c:a flac "$aud/mono.flac"
ff -f lavfi -i "$(sine 8000 0.2)" -c:a libvorbis -q:a 0 "$aud/vorbis.ogg"
ff -f lavfi -i "$(sine 8000 0.2)" -c:a aac -b:a 8k "$aud/aac.m4a"
ff -f lavfi -i "$(sine 8000 0.1)" -c:a libopus -b:a 8k "$aud/opus.ogg"
ff -f lavfi -i "$(sine 8000 0.1)" -ac 2 -c:a libopus -b:a 8k "$aud/opus-stereo.webm"

# Container checks: the audio containers with tables, and the image formats with a declared size.
cp "$aud/aac.m4a" "$aud/mono.flac" "$aud/vorbis.ogg" "$img/baseline.jpg" "$img/testsrc.png" \
    "$img/anim.gif" "$img/lossy.webp" "$img/rgb.tiff" seeds/media_containers/

# Multipart uploads: the first line is the Content-Type, the rest the body.
mp=seeds/multipart_form
part() { printf -- '--XyZ\r\nContent-Disposition: form-data; name="%s"%s\r\n\r\n' "$1" "$2"; }
{ printf 'multipart/form-data; boundary=XyZ\n'; part file '; filename="a.jpg"'
  cat "$img/baseline.jpg"; printf '\r\n'; part metadata ''; printf '{"model":"m"}\r\n--XyZ--\r\n'
} >"$mp/sign"
{ printf 'multipart/form-data; boundary="a b"; charset=utf-8\n--a b\r\n'
  printf 'Content-Disposition: form-data; name=file\r\nContent-Type: audio/wav\r\n\r\n'
  cat "$aud/u8.wav"; printf '\r\n--a b--\r\n'
} >"$mp/quoted-boundary"

# C2PA: small files signed by this repo's `hallmark` (built first: cargo build --bin hallmark)
# with a throw-away instance, and the manifest store of the signed PNG as a standalone `.c2pa`
# (its `caBX` chunk).
c2=seeds/c2pa_read
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ff -f lavfi -i testsrc=size=128x128:rate=1 -frames:v 1 -q:v 10 "$tmp/in.jpg"
ff -f lavfi -i testsrc=size=128x128:rate=1 -frames:v 1 "$tmp/in.png"
ff -f lavfi -i "$(sine 8000 5)" -c:a pcm_u8 "$tmp/in.wav"
for f in in.jpg in.png in.wav; do
    HALLMARK__STORAGE__DATA_DIR="$tmp/data" HALLMARK_LOG=error ../target/debug/hallmark sign \
        "$tmp/$f" -o "$c2/signed.${f#in.}" --model fuzz-seed >/dev/null
done
python3 - "$c2/signed.png" "$c2/store.c2pa" <<'PY'
import struct, sys
png = open(sys.argv[1], "rb").read()
at = 8
while at < len(png):
    n, kind = struct.unpack(">I4s", png[at:at + 8])
    if kind == b"caBX":
        open(sys.argv[2], "wb").write(png[at + 8:at + 8 + n])
    at += 12 + n
PY

python3 - <<'PY'
import base64, hashlib, json
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization as ser

NAME = "fuzz.hallmark.local/audit"
key = Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
pk = key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
kid = hashlib.sha256(NAME.encode() + b"\n\x01" + pk).digest()[:4]
b64 = lambda b: base64.b64encode(b).decode()
ALG = b"\x01"
vkey = f"{NAME}+{kid.hex()}+{b64(ALG + pk)}"
skey = f"PRIVATE+KEY+{NAME}+{kid.hex()}+{b64(ALG + bytes([7] * 32))}"

def sign(text):
    return f"{text}\n\u2014 {NAME} {b64(kid + key.sign(text.encode()))}\n"

H = lambda b: hashlib.sha256(b).digest()
leaf = lambda d: H(b"\x00" + d)
node = lambda l, r: H(b"\x01" + l + r)

def split(n):  # largest power of two < n (RFC 9162 2.1.1)
    k = 1
    while k * 2 < n:
        k *= 2
    return k

def root(ls):
    if len(ls) == 1:
        return ls[0]
    k = split(len(ls))
    return node(root(ls[:k]), root(ls[k:]))

def path(m, ls):  # RFC 9162 2.1.3.1
    if len(ls) == 1:
        return []
    k = split(len(ls))
    return path(m, ls[:k]) + [root(ls[k:])] if m < k else path(m - k, ls[k:]) + [root(ls[:k])]

entries = [json.dumps({"seq": i + 1, "kind": "decision.recorded", "actor": "key:1",
                       "timestamp": "2026-12-07T18:00:00Z", "data": {"n": i}},
                      sort_keys=True, separators=(",", ":")) for i in range(5)]
leaves = [leaf(e.encode()) for e in entries]
cp = f"{NAME}\n5\n{b64(root(leaves))}\n"
note = sign(cp)

def w(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)

w("seeds/audit_note/vkey", vkey)
w("seeds/audit_note/skey", skey)
w("seeds/audit_note/checkpoint", note)
w("seeds/audit_note/checkpoint-ext", sign(cp + "extension line\n"))
w("seeds/audit_note/checkpoint-body", cp)
w("seeds/audit_note/cosigned", note + f"\u2014 witness.example AAAAAA{b64(bytes(64))}\n")

for i in (0, 2, 4):
    r = {"leaf_index": i, "leaf_hash": leaves[i].hex(),
         "inclusion_proof": [h.hex() for h in path(i, leaves)], "checkpoint": note,
         "entry": entries[i]}
    w(f"seeds/audit_receipt/receipt-{i}.json", json.dumps(r))
w("seeds/audit_receipt/hash", leaves[0].hex())

prev, lines = bytes(32), []
for e in entries:
    h = H(prev + e.encode())
    lines.append(json.dumps({"seq": json.loads(e)["seq"], "prev_hash": prev.hex(),
                             "entry_hash": h.hex(), "body": json.loads(e)}))
    prev = h
w("seeds/audit_receipt/export.jsonl", "\n".join(lines) + "\n")
PY
du -sh seeds; find seeds -type f | wc -l
