#!/usr/bin/env python3
"""The per-backend part of scripts/bench.sh: for each plugin and command, the wall time of the
release binary and the CPU time of all its threads, the number of backend requests it makes, its
time to the first request (its start-up and its own work before it), and the ratio to the
floor: one bare request of the same API made by curl against the same local backend (for
PKCS#11, pkcs11-tool with login), as medians of paired runs (plugin, floor, plugin, floor, ...)
in one invocation.

    bench_backends.py --bin DIR --runs N [--backends pkcs11,hashicorp-vault,aws-kms,...]
                      [--before DIR]

It expects the local backends running with their environment exported (bench.sh does both),
makes its own EC-256 key on each with a self-signed certificate as the chain file, and counts
requests through a counting proxy (OpenBao, LocalStack, the local Cloud KMS) or the emulator's
request log (Key Vault).
"""

import argparse
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

PAYLOAD = b"benchmark payload"
DIGEST = hashlib.sha256(PAYLOAD).digest()


def run(cmd, stdin=None, env=None):
    """Runs cmd; returns (milliseconds, stdout). A failure stops the benchmark with its output."""
    ms, _, out = run_timed(cmd, stdin, env)
    return ms, out


def run_timed(cmd, stdin=None, env=None):
    """Runs cmd; returns (wall milliseconds, CPU milliseconds of all its threads, user and
    system, stdout). A failure stops the benchmark with its output."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    p = subprocess.run(cmd, input=stdin, capture_output=True, env=env)
    ms = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_ms = (after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime) * 1000
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, cmd))[:200]} failed ({p.returncode}):\n"
                 f"{p.stdout.decode(errors='replace')}{p.stderr.decode(errors='replace')}")
    return ms, cpu_ms, p.stdout


def request(command, key_id, config):
    body = {"contractVersion": "1.0", "keyId": key_id, "pluginConfig": config}
    if command == "generate-signature":
        body.update(keySpec="EC-256", hashAlgorithm="SHA-256",
                    payload=base64.b64encode(PAYLOAD).decode())
    return json.dumps(body).encode()


def paired(plugin_cmds, stdin, env, floor_cmd, runs):
    """Medians ([ms of each plugin command], [its CPU ms], floor ms) of `runs` interleaved runs
    (each plugin command, in alternating order, then the floor), after one warm-up of each."""
    for cmd in plugin_cmds:
        run(cmd, stdin, env)
    run(floor_cmd, env=env)
    mine, cpu, floor = [[] for _ in plugin_cmds], [[] for _ in plugin_cmds], []
    for round_ in rounds(plugin_cmds, runs):
        for index, cmd in round_:
            ms, cpu_ms, _ = run_timed(cmd, stdin, env)
            mine[index].append(ms)
            cpu[index].append(cpu_ms)
        floor.append(run(floor_cmd, env=env)[0])
    med = statistics.median
    return [med(t) for t in mine], [med(c) for c in cpu], med(floor)


def until_first_connect(cmds, stdin, env, work, runs):
    """Per command of `cmds` (run interleaved): the median ms from the plugin's execve to its
    first TCP connect (its local work before the first request), with its two parts: the
    process's start (execve to the runner's first call, the dup of stdout) and the plugin's own
    work (from there to the connect). "-" when it makes no TCP connection.

    The times come from the kernel's syscall tracepoints, recorded by `perf` (system-wide, so
    root), which does not stop the traced process. Without perf they come from strace, which
    stops it at every traced call and every thread it starts: that more than doubles the
    figures of the plugins that start threads, so the table says which tracer it used."""
    marks = by_perf(cmds, stdin, env, work, runs)
    if marks is None:
        marks = by_strace(cmds, stdin, env, work, runs)
    med = statistics.median
    parts = [[((m["connect"] - m["execve"]) * 1000, (m["runner"] - m["execve"]) * 1000,
               (m["connect"] - m["runner"]) * 1000)
              for m in runs_marks if "connect" in m and "runner" in m and "execve" in m]
             for runs_marks in marks]
    return [f"{med(t for t, _, _ in m):.2f} ({med(s for _, s, _ in m):.2f}+"
            f"{med(o for _, _, o in m):.2f})" if m else "-" for m in parts]


TRACER = None  # "perf" or "strace", the first time until_first_connect ran


def rounds(cmds, runs):
    """`runs` rounds of [(index, cmd), ...], the order alternating from round to round, so that
    neither plugin binary always runs first."""
    for i in range(runs):
        yield list(enumerate(cmds))[:: 1 if i % 2 else -1]


def interleaved(cmds, runs):
    """(index, cmd) of each of the `rounds`, one after the other."""
    for round_ in rounds(cmds, runs):
        yield from round_


def by_perf(cmds, stdin, env, work, runs):
    """Per command, a list of {"execve", "runner", "connect": seconds} read from perf's
    syscall tracepoints, or None when perf cannot record them here."""
    global TRACER
    if TRACER == "strace" or not shutil.which("perf"):
        return None
    out, spec = os.path.join(work, "perf.data"), os.path.join(work, "launch.json")
    with open(spec, "w") as f:
        json.dump({"cmds": cmds, "stdin": stdin.decode(), "runs": runs}, f)
    events = "syscalls:sys_enter_execve,syscalls:sys_enter_dup,syscalls:sys_enter_connect"
    rec = subprocess.run(["perf", "record", "-a", "-q", "-e", events, "-o", out, "--",
                          sys.executable, __file__, "--launch", spec],
                         capture_output=True, env=env)
    if rec.returncode != 0:
        TRACER = "strace"
        return None
    TRACER = "perf"
    pids = json.loads(rec.stdout)  # [[index, pid], ...], from launch()
    script = subprocess.run(["perf", "script", "-i", out, "-F", "pid,time,event,trace"],
                            capture_output=True, check=True, text=True).stdout
    seen = {}
    for line in script.splitlines():
        fields = line.split(None, 3)
        if len(fields) < 3:
            continue
        pid, ts, event = int(fields[0]), float(fields[1].rstrip(":")), fields[2]
        m = seen.setdefault(pid, {})
        if event.endswith("sys_enter_execve:"):
            m.setdefault("execve", ts)
        elif event.endswith("sys_enter_dup:"):
            m.setdefault("runner", ts)
        # sockaddr_in or sockaddr_in6: a TCP (or UDP) connect, not a Unix socket's.
        elif event.endswith("sys_enter_connect:") and re.search(
                r"addrlen: 0x0*(10|1c)\b", fields[3] if len(fields) > 3 else ""):
            m.setdefault("connect", ts)
    marks = [[] for _ in cmds]
    for index, pid in pids:
        marks[index].append(seen.get(pid, {}))
    return marks


def launch(spec):
    """The workload that by_perf records: runs the commands of `spec` interleaved and prints
    which process ran which, [[index, pid], ...]."""
    with open(spec) as f:
        spec = json.load(f)
    pids = []
    for index, cmd in interleaved(spec["cmds"], spec["runs"]):
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        p.communicate(spec["stdin"].encode())
        pids.append([index, p.pid])
    json.dump(pids, sys.stdout)


def by_strace(cmds, stdin, env, work, runs):
    """Per command, a list of {"execve", "runner", "connect": seconds} read from strace's
    timestamps (only execve, dup and connect are traced, through seccomp-bpf)."""
    global TRACER
    if not shutil.which("strace"):
        return [[] for _ in cmds]
    TRACER = "strace"
    out = os.path.join(work, "strace.out")
    marks = [[] for _ in cmds]
    for index, cmd in interleaved(cmds, runs):
        subprocess.run(["strace", "-f", "--seccomp-bpf", "-ttt", "-e",
                        "trace=execve,dup,connect", "-o", out] + cmd,
                       input=stdin, capture_output=True, env=env)
        m = {}
        for line in open(out):
            fields = line.split(None, 2)
            if len(fields) < 3:
                continue
            ts, call = float(fields[1]), fields[2]
            if call.startswith("execve("):
                m.setdefault("execve", ts)
            elif call.startswith("dup("):
                m.setdefault("runner", ts)
            elif call.startswith("connect(") and "AF_INET" in call:
                m.setdefault("connect", ts)
        marks[index].append(m)
    return marks


class CountingProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to upstream (host:port, plain HTTP) and counts them; with `tls`
    (a certificate file and its key), it is an HTTPS server."""

    daemon_threads = True

    def __init__(self, upstream, tls=None):
        self.upstream = upstream
        self.count = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.socket = ctx.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        with self.server.lock:
            self.server.count += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        conn = http.client.HTTPConnection(self.server.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        conn.request(self.command, self.path, body, headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = forward


class Bench:
    def __init__(self, bin_dir, runs, work, before=None):
        self.bin, self.runs, self.work, self.before = bin_dir, runs, work, before
        self.rows = []

    def exe(self, plugin):
        return os.path.join(self.bin, f"notation-{plugin}")

    def measure(self, plugin, command, key_id, config, floor_cmd, count, env=None, label=""):
        """One table row; count(plugin_cmd, stdin) -> requests made by one invocation. With
        `before` (a folder of other binaries), those run interleaved with these and the floor,
        each figure beside this one."""
        env = dict(os.environ, **(env or {}))
        cmd = [self.exe(plugin), command]
        cmds = [cmd]
        if self.before:
            cmds.append([os.path.join(self.before, f"notation-{plugin}"), command])
        stdin = request(command, key_id, config)
        times, cpu, floor = paired(cmds, stdin, env, floor_cmd, self.runs)
        # As many traced runs as paired ones: a change of a tenth of a millisecond needs more
        # than 15 of them to show on a shared machine.
        local = until_first_connect(cmds, stdin, env, self.work, self.runs)
        name = f"{plugin} ({label})" if label else plugin
        self.rows.append((name, command, times, cpu, floor, count(cmd, stdin), local))

    def table(self):
        head = (f"{'plugin':<22} {'command':<20} {'plugin ms':>10} {'cpu ms':>7} {'floor ms':>9} "
                f"{'ratio':>6} {'requests':>9} {'to 1st connect (start+own)':>27}")
        print(head + ("   before: ms, cpu ms, ratio, to 1st connect" if self.before else ""))
        tracer = {"perf": "perf's syscall tracepoints (the process runs unstopped)",
                  "strace": "strace, which stops each thread at each traced call: figures of "
                            "the threaded plugins inflated"}.get(TRACER, "no tracer")
        for plugin, command, times, cpu, floor, requests, local in self.rows:
            line = (f"{plugin:<22} {command:<20} {times[0]:>10.1f} {cpu[0]:>7.1f} {floor:>9.1f} "
                    f"{times[0] / floor:>5.2f}x {requests:>9} {local[0]:>27}")
            if self.before:
                line += (f"   {times[1]:>6.1f} {cpu[1]:>6.1f} {times[1] / floor:>5.2f}x "
                         f"{local[1]:>20}")
            print(line)
        print(f"(time to the first connect, medians of {self.runs} runs each, read from {tracer})")

    # -- the backends ---------------------------------------------------------------------------
    def self_signed(self, plugin, key_id, config=()):
        pem = os.path.join(self.work, f"{plugin}.pem")
        args = [self.exe(plugin), "certificate", "self-signed", "--key-id", key_id,
                "--subject", f"CN=bench {plugin},O=notation-plugins,ST=WA,C=US", "--out", pem,
                "--force"]
        for c in config:
            args += ["--plugin-config", c]
        run(args)
        return pem

    def pkcs11(self):
        module = "/usr/lib/softhsm/libsofthsm2.so"
        token = os.path.join(self.work, "hsm")
        run(["softhsm/create-token.sh", token, "bench"])
        os.environ["SOFTHSM2_CONF"] = os.path.join(token, "softhsm2.conf")
        pin_file = os.path.join(token, "user.pin")
        pin = open(pin_file).read().strip()
        tool = ["pkcs11-tool", "--module", module, "--token-label", "bench"]
        run(tool + ["--login", "--pin", pin, "--keypairgen", "--key-type", "EC:prime256v1",
                    "--id", "01", "--label", "k"])
        uri = f"pkcs11:token=bench;object=k?module-path={module}&pin-source=file:{pin_file}"
        chain = self.self_signed("pkcs11", uri)
        digest = os.path.join(self.work, "digest.bin")
        open(digest, "wb").write(DIGEST)
        none = lambda cmd, stdin: "-"  # noqa: E731 - no network: nothing to count
        self.measure("pkcs11", "describe-key", uri, {},
                     tool + ["--read-object", "--type", "pubkey", "--id", "01"], none)
        self.measure("pkcs11", "generate-signature", uri, {"certificate_chain": chain},
                     tool + ["--login", "--pin", pin, "--sign", "--id", "01", "-m", "ECDSA",
                             "--input-file", digest, "--output-file", os.devnull], none)

    def proxied_count(self, upstream_url, variable, proxy=None, env=None):
        """count(cmd, stdin) for measure(): the requests a run makes, counted by `proxy` (by
        default a plain-HTTP one in front of `upstream_url`), which `variable` names to it."""
        proxy = proxy or CountingProxy(urllib.parse.urlsplit(upstream_url).netloc)

        def count(cmd, stdin):
            before = proxy.count
            run(cmd, stdin, {**os.environ, **(env or {}), variable: proxy.url})
            return proxy.count - before
        return count

    def tls_server_files(self):
        """(certificate, key, trust bundle) for an HTTPS server at 127.0.0.1: a certificate
        issued by a CA of its own (openssl), and the system's CA bundle with that CA added, as a
        user of a Vault whose CA is private trusts it (or None where there is no bundle)."""
        system = "/etc/ssl/certs/ca-certificates.crt"
        if not os.path.exists(system) or not shutil.which("openssl"):
            print(f"bench: no HTTPS rows for hashicorp-vault: no {system} or openssl",
                  file=sys.stderr)
            return None
        script = """set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -subj /CN=bench-ca -days 1 -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
  -out server.csr -subj /CN=127.0.0.1
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
  -days 1 -extfile server.ext
"""
        tls = os.path.join(self.work, "tls")
        os.makedirs(tls, exist_ok=True)
        subprocess.run(["bash", "-c", script], cwd=tls, check=True, capture_output=True)
        bundle = os.path.join(tls, "trust.pem")
        with open(bundle, "w") as f:
            f.write(open(system).read() + open(os.path.join(tls, "ca.pem")).read())
        return os.path.join(tls, "server.pem"), os.path.join(tls, "server.key"), bundle

    def vault(self):
        addr, token = os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"]

        def api(method, path, body=None):
            req = urllib.request.Request(f"{addr}/v1/{path}", method=method,
                                         data=json.dumps(body).encode() if body else None,
                                         headers={"X-Vault-Token": token})
            try:
                return urllib.request.urlopen(req).read()
            except urllib.error.HTTPError as e:
                if e.code != 400:  # the mount exists already
                    raise
        api("POST", "sys/mounts/bench-transit", {"type": "transit"})
        api("POST", "bench-transit/keys/bench", {"type": "ecdsa-p256"})
        mount = "transit_mount=bench-transit"
        chain = self.self_signed("hashicorp-vault", "bench", [mount])
        curl = ["curl", "-sf", "-o", os.devnull, "-H", f"X-Vault-Token: {token}"]
        sign_body = json.dumps({"input": base64.b64encode(DIGEST).decode(), "prehashed": True,
                                "hash_algorithm": "sha2-256", "marshaling_algorithm": "jws"})
        count = self.proxied_count(addr, "VAULT_ADDR")
        config = {"transit_mount": "bench-transit"}
        self.measure("hashicorp-vault", "describe-key", "bench", config,
                     curl + [f"{addr}/v1/bench-transit/keys/bench"], count)
        self.measure("hashicorp-vault", "generate-signature", "bench",
                     dict(config, certificate_chain=chain),
                     curl + ["-X", "POST", "-d", sign_body, f"{addr}/v1/bench-transit/sign/bench"],
                     count)
        # As most Vaults are reached: over HTTPS (a TLS proxy in front of the dev server, which
        # serves plain HTTP), the system's CA bundle with the proxy's CA added as trust store.
        files = self.tls_server_files()
        if files is None:
            return
        cert, key, bundle = files
        proxy = CountingProxy(urllib.parse.urlsplit(addr).netloc, tls=(cert, key))
        env = {"VAULT_ADDR": proxy.url, "SSL_CERT_FILE": bundle}
        count = self.proxied_count(addr, "VAULT_ADDR", proxy, env)
        curl = curl + ["--cacert", bundle]
        self.measure("hashicorp-vault", "describe-key", "bench", config,
                     curl + [f"{proxy.url}/v1/bench-transit/keys/bench"], count, env, "HTTPS")
        self.measure("hashicorp-vault", "generate-signature", "bench",
                     dict(config, certificate_chain=chain),
                     curl + ["-X", "POST", "-d", sign_body,
                             f"{proxy.url}/v1/bench-transit/sign/bench"], count, env, "HTTPS")

    def aws(self):
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        _, out = run([self.exe("aws-kms"), "create-key", "--spec", "ECC_NIST_P256"])
        key = out.decode().strip()
        chain = self.self_signed("aws-kms", key)
        region = os.environ["AWS_REGION"]
        user = f"{os.environ['AWS_ACCESS_KEY_ID']}:{os.environ['AWS_SECRET_ACCESS_KEY']}"
        curl = ["curl", "-sf", "-o", os.devnull, "--aws-sigv4", f"aws:amz:{region}:kms",
                "--user", user, "-H", "Content-Type: application/x-amz-json-1.1"]
        sign_body = json.dumps({"KeyId": key, "Message": base64.b64encode(DIGEST).decode(),
                                "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"})
        count = self.proxied_count(endpoint, "AWS_ENDPOINT_URL")
        self.measure("aws-kms", "describe-key", key, {},
                     curl + ["-H", "X-Amz-Target: TrentService.GetPublicKey",
                             "-d", json.dumps({"KeyId": key}), endpoint], count)
        self.measure("aws-kms", "generate-signature", key, {"certificate_chain": chain},
                     curl + ["-H", "X-Amz-Target: TrentService.Sign", "-d", sign_body, endpoint],
                     count)
        # As against AWS itself: over HTTPS (LocalStack's own TLS port), the system's CA bundle
        # with LocalStack's certificate added as the trust store.
        https = endpoint.replace("http://127.0.0.1:", "https://localhost:")
        bundle = self.localstack_trust(https)
        if bundle is None:
            return
        env = {"AWS_ENDPOINT_URL": https, "SSL_CERT_FILE": bundle}
        curl = curl + ["--cacert", bundle]
        uncounted = lambda cmd, stdin: "-"  # noqa: E731 - the counting proxy speaks plain HTTP
        self.measure("aws-kms", "describe-key", key, {},
                     curl + ["-H", "X-Amz-Target: TrentService.GetPublicKey",
                             "-d", json.dumps({"KeyId": key}), https], uncounted, env, "HTTPS")
        self.measure("aws-kms", "generate-signature", key, {"certificate_chain": chain},
                     curl + ["-H", "X-Amz-Target: TrentService.Sign", "-d", sign_body, https],
                     uncounted, env, "HTTPS")

    def localstack_trust(self, url):
        """The system's CA bundle with the certificate LocalStack serves at `url` added, or None
        (and a note) where there is none to read."""
        host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
        system = "/etc/ssl/certs/ca-certificates.crt"
        try:
            pem = ssl.get_server_certificate((host, port))
        except OSError as e:
            print(f"bench: no HTTPS rows for aws-kms: LocalStack's TLS port: {e}", file=sys.stderr)
            return None
        if not os.path.exists(system):
            print(f"bench: no HTTPS rows for aws-kms: no {system}", file=sys.stderr)
            return None
        bundle = os.path.join(self.work, "localstack-trust.pem")
        with open(bundle, "w") as f:
            f.write(open(system).read() + pem)
        return bundle

    def azure(self):
        # The emulator's CA is trusted through SSL_CERT_FILE for these runs only: the other
        # plugins run with the system's default trust store (bench.sh).
        trust = os.environ.get("KV_EMULATOR_TRUST")
        if trust:
            os.environ["SSL_CERT_FILE"] = trust
        try:
            self.azure_runs()
        finally:
            if trust:
                del os.environ["SSL_CERT_FILE"]

    def azure_runs(self):
        vault, admin = os.environ["KV_EMULATOR_VAULT_URL"], os.environ["KV_EMULATOR_ADMIN_URL"]

        def admin_call(method, path, body=None):
            sep = "&" if "?" in path else "?"
            req = urllib.request.Request(f"{admin}{path}{sep}api-version=7.5", method=method,
                                         data=json.dumps(body).encode() if body else None,
                                         headers={"Content-Type": "application/json"})
            return json.loads(urllib.request.urlopen(req).read() or b"null")
        name = f"bench-{os.getpid()}"
        admin_call("POST", f"/keys/{name}/create", {"kty": "EC", "crv": "P-256"})
        key_id = f"{vault}/keys/{name}"
        chain = self.self_signed("azure-keyvault", key_id)
        tenant = os.environ["AZURE_TENANT_ID"]
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": os.environ["AZURE_CLIENT_ID"],
            "client_secret": os.environ["AZURE_CLIENT_SECRET"],
            "scope": "https://vault.azure.net/.default"}).encode()
        ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        authority = os.environ["AZURE_AUTHORITY_HOST"].rstrip("/")
        token = json.loads(urllib.request.urlopen(
            f"{authority}/{tenant}/oauth2/v2.0/token", data=form, context=ctx).read())
        curl = ["curl", "-sf", "-o", os.devnull, "--cacert", os.environ["SSL_CERT_FILE"],
                "-H", f"Authorization: Bearer {token['access_token']}"]
        sign_body = json.dumps({"alg": "ES256",
                                "value": base64.urlsafe_b64encode(DIGEST).decode().rstrip("=")})

        def count(cmd, stdin):
            before = len(admin_call("GET", "/_admin/requests")["requests"])
            run(cmd, stdin)
            return len(admin_call("GET", "/_admin/requests")["requests"]) - before
        self.measure("azure-keyvault", "describe-key", key_id, {},
                     curl + [f"{key_id}?api-version=7.5"], count)
        self.measure("azure-keyvault", "generate-signature", key_id, {"certificate_chain": chain},
                     curl + ["-X", "POST", "-H", "Content-Type: application/json", "-d", sign_body,
                             f"{key_id}/sign?api-version=7.5"], count)


def gcp(bench):
    """notation-gcp-kms against the local Cloud KMS (hsm-tests/gcpkms-emulator)."""
    url = os.environ["GCPKMS_EMULATOR_URL"]
    project = os.environ["GCPKMS_EMULATOR_PROJECT"]
    token = json.loads(urllib.request.urlopen(f"{url}/_admin/token").read())["access_token"]

    def api(path, body):
        req = urllib.request.Request(f"{url}/v1/{path}", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req).read())
    ring = f"projects/{project}/locations/europe-west1/keyRings/bench-{os.getpid()}"
    api(f"{ring.rsplit('/keyRings/', 1)[0]}/keyRings?keyRingId=bench-{os.getpid()}", {})
    api(f"{ring}/cryptoKeys?cryptoKeyId=k", {"purpose": "ASYMMETRIC_SIGN",
                                            "versionTemplate": {"algorithm": "EC_SIGN_P256_SHA256"}})
    version = f"{ring}/cryptoKeys/k/cryptoKeyVersions/1"
    chain = bench.self_signed("gcp-kms", version)
    curl = ["curl", "-sf", "-o", os.devnull, "-H", f"Authorization: Bearer {token}",
            "-H", "Content-Type: application/json"]
    sign_body = json.dumps({"digest": {"sha256": base64.b64encode(DIGEST).decode()}})
    count = bench.proxied_count(url, "NOTATION_GCP_KMS_ENDPOINT")
    bench.measure("gcp-kms", "describe-key", version, {},
                  curl + [f"{url}/v1/{version}/publicKey"], count)
    bench.measure("gcp-kms", "generate-signature", version, {"certificate_chain": chain},
                  curl + ["-X", "POST", "-d", sign_body, f"{url}/v1/{version}:asymmetricSign"],
                  count)


def main():
    if sys.argv[1:2] == ["--launch"]:
        return launch(sys.argv[2])
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--before", help="a folder of other notation-* binaries, run interleaved")
    ap.add_argument("--backends",
                    default="pkcs11,hashicorp-vault,aws-kms,azure-keyvault,gcp-kms")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="notation-bench-")
    try:
        bench = Bench(args.bin, args.runs, work, args.before)
        for backend in args.backends.split(","):
            {"pkcs11": bench.pkcs11, "hashicorp-vault": bench.vault, "aws-kms": bench.aws,
             "azure-keyvault": bench.azure, "gcp-kms": lambda: gcp(bench)}[backend]()
        bench.table()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
