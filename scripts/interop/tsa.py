#!/usr/bin/env python3
"""A local RFC 3161 time-stamp authority for the interop check: OpenSSL's `openssl ts -reply`
behind Python's http.server (RFC 3161 §3.4 HTTP transport).

Usage: tsa.py DIR   (creates a CA and the TSA's key and certificate in DIR; writes the port
                     to DIR/port)
"""
import http.server
import os
import subprocess
import sys
import tempfile

d = os.path.abspath(sys.argv[1])
os.makedirs(d, exist_ok=True)
def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


# A CA and the TSA certificate it issues (c2pa-rs refuses self-signed TSA certificates).
openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "30", "-subj", "/CN=Hallmark Interop TSA Root/O=Hallmark Test",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem")
openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=Hallmark Interop TSA/O=Hallmark Test",
        "-keyout", f"{d}/tsa.key", "-out", f"{d}/tsa.csr")
with open(f"{d}/tsa.ext", "w") as f:
    f.write("extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n"
            "basicConstraints=critical,CA:FALSE\n")
openssl("x509", "-req", "-days", "30", "-set_serial", "2", "-in", f"{d}/tsa.csr",
        "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key", "-extfile", f"{d}/tsa.ext",
        "-out", f"{d}/tsa.pem")
with open(f"{d}/chain.pem", "w") as f:
    f.write(open(f"{d}/tsa.pem").read() + open(f"{d}/ca.pem").read())
with open(f"{d}/serial", "w") as f:
    f.write("01\n")
with open(f"{d}/tsa.cnf", "w") as f:
    f.write(f"""[ tsa ]
default_tsa = tsa1
[ tsa1 ]
dir = {d}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/chain.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with tempfile.TemporaryDirectory() as t:
            q, r = os.path.join(t, "q.tsq"), os.path.join(t, "r.tsr")
            with open(q, "wb") as f:
                f.write(body)
            p = subprocess.run(["openssl", "ts", "-reply", "-config", f"{d}/tsa.cnf",
                                "-queryfile", q, "-out", r], capture_output=True)
            if p.returncode != 0:
                self.send_response(500)
                self.end_headers()
                return
            with open(r, "rb") as f:
                data = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(f"{d}/port.tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(f"{d}/port.tmp", f"{d}/port")
server.serve_forever()
