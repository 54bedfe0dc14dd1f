"""The server extension's summary endpoint on a project of 100,000 runs, through real HTTP.

    python benchmarks/server_summary.py                # 100,000 runs (plus 10,000 of a neighbour project)
    python benchmarks/server_summary.py --runs 10000   # another size
    python benchmarks/server_summary.py --registry r.sqlite   # reuse (or create once) this registry

Fills a registry with ``registry_scale.fill`` (the same seeded project), starts ``jupyter server``
as a subprocess on a free port with a token and the extension enabled, and times ``GET
/notebook-carbon/summary`` from this process over one keep-alive connection: the first request
(the registry opened, every run read), then 30 requests of an unchanged registry after 3 of
warm-up (target: p95 <= 100 ms), then requests each made just after a kernel recorded a run (the
summary recomputed). Also the sweeps listing and a page of runs, for reference.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from registry_scale import PROJECT, fill  # noqa: E402  (benchmarks/ is not a package)

from notebook_carbon.registry import Registry, new_uid  # noqa: E402

TARGET_P95_S = 0.100
TOKEN = "benchmark-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(registry: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
        f"--port={port}", "--ip=127.0.0.1",
        f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={workdir}",
        "--ServerApp.jpserver_extensions={'notebook_carbon.server': True}",
        f"--NotebookCarbonServer.registry={registry}", f"--NotebookCarbonServer.project={PROJECT}",
    ]  # fmt: skip
    # an empty config directory: what the user configured does not change the figures
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(workdir / "config"),
           "JUPYTER_RUNTIME_DIR": str(workdir / "rt")}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("jupyter server did not start within 60 s")


def timed(conn: http.client.HTTPConnection, path: str) -> tuple[float, dict]:
    start = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"token {TOKEN}"})
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"{path}: HTTP {response.status}: {body[:300]!r}")
    return elapsed, json.loads(body)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--registry", help="a registry file to reuse; created and filled if absent")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        registry = args.registry or str(workdir / "registry.sqlite")
        if not Path(registry).exists():
            started = time.perf_counter()
            fill(registry, args.runs)
            print(f"filled {args.runs:,} runs in {time.perf_counter() - started:.1f} s")
        server, port = start_server(registry, workdir)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            summary = "/notebook-carbon/summary"
            first, body = timed(conn, summary)
            print(f"project {PROJECT}: {body['runs']:,} runs; "
                  f"first summary (open, read every run): {first * 1e3:.0f} ms")  # fmt: skip
            for _ in range(3):
                timed(conn, summary)
            warm = [timed(conn, summary)[0] for _ in range(args.reps)]
            p50, p95 = statistics.median(warm), percentile(warm, 95)
            verdict = "met" if p95 <= TARGET_P95_S else "MISSED"
            print(f"summary, unchanged registry, {args.reps} requests: "
                  f"p50 {p50 * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms "
                  f"(target p95 <= {TARGET_P95_S * 1e3:.0f} ms: {verdict})")  # fmt: skip
            changed = []
            with Registry.open(registry) as reg:
                for _ in range(5):
                    run = {"uid": new_uid(), "project": PROJECT, "sweep": "bench"}
                    reg.record_run(run, {"status": "ok", "energy_j": 1.0})
                    changed.append(timed(conn, summary)[0])
            print(f"summary just after a new run, 5 requests: "
                  f"median {statistics.median(changed) * 1e3:.0f} ms, "
                  f"max {max(changed) * 1e3:.0f} ms")  # fmt: skip
            for path in ("/notebook-carbon/sweeps", "/notebook-carbon/runs?limit=50"):
                timed(conn, path)
                times = [timed(conn, path)[0] for _ in range(10)]
                print(f"{path}, 10 requests after one: "
                      f"p50 {statistics.median(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms")
            conn.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
