"""invisible-watermark (dwtDct / dwtDctSvd, 64 bits) as a line-oriented server for the
Rust robustness harness (watermark/examples/bench.rs).

Protocol (one request per stdin line, tab-separated; one reply line each):
  embed  METHOD SRC DST HEX16   -> "ok SECONDS"          (encode time only, no I/O)
  decode METHOD SRC             -> "ok SECONDS HEX16"    (decode time only, no I/O)
  time   METHOD SRC REPEATS     -> "ok EMBED_MEDIAN EMBED_MIN DECODE_MEDIAN DECODE_MIN" (s)
Errors reply "err MESSAGE". Runs on one core (OpenCV/BLAS threads = 1).
"""
import os

for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"

import sys
import time
import types

# imwatermark imports its RivaGAN module (torch) unconditionally; dwtDct and dwtDctSvd
# do not use it, so a stub keeps torch out of the environment.
sys.modules.setdefault("torch", types.ModuleType("torch"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from imwatermark import WatermarkDecoder, WatermarkEncoder  # noqa: E402

cv2.setNumThreads(1)


def embed(method, src, dst, hex16):
    img = cv2.imread(src, cv2.IMREAD_COLOR)
    enc = WatermarkEncoder()
    enc.set_watermark("bytes", bytes.fromhex(hex16))
    t0 = time.perf_counter()
    out = enc.encode(img, method)
    t = time.perf_counter() - t0
    cv2.imwrite(dst, out)
    return f"ok {t:.6f}"


def decode_img(method, img):
    dec = WatermarkDecoder("bytes", 64)
    return dec.decode(img, method)


def decode(method, src):
    img = cv2.imread(src, cv2.IMREAD_COLOR)
    t0 = time.perf_counter()
    out = decode_img(method, img)
    t = time.perf_counter() - t0
    return f"ok {t:.6f} {bytes(out).hex()}"


def timing(method, src, repeats):
    img = cv2.imread(src, cv2.IMREAD_COLOR)
    enc = WatermarkEncoder()
    enc.set_watermark("bytes", bytes.fromhex("0123456789abcdef"))
    te, td = [], []
    for _ in range(int(repeats)):
        t0 = time.perf_counter()
        m = enc.encode(img, method)
        te.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        decode_img(method, m)
        td.append(time.perf_counter() - t0)
    return f"ok {np.median(te):.6f} {min(te):.6f} {np.median(td):.6f} {min(td):.6f}"


def main():
    for line in sys.stdin:
        parts = line.rstrip("\n").split("\t")
        try:
            if parts[0] == "embed":
                reply = embed(*parts[1:5])
            elif parts[0] == "decode":
                reply = decode(*parts[1:3])
            elif parts[0] == "time":
                reply = timing(*parts[1:4])
            else:
                reply = f"err unknown op {parts[0]}"
        except Exception as e:  # report, keep serving
            reply = "err " + str(e).replace("\n", " ")
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
