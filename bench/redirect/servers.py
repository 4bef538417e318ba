"""Which server can carry the redirect target: bare 302 apps on each candidate against nginx, in one run.

PRODUCT.md wants server CPU per redirect within 2.5× nginx's `return 302`. Before any Clearline code runs, the
server itself spends CPU on every request; this measures that floor for each candidate, serving the constant 302
of `floor_app.py` (same Location length as Clearline's):

- nginx `return 302` (the baseline, as in run.py);
- uvicorn (uvloop, httptools: checked in the process's memory map) with the bare ASGI app;
- uvicorn's event loop with `RawProtocol`, a bare asyncio protocol writing the answer (what `clearline serve`'s
  redirect protocol builds on);
- Granian (Rust HTTP server) with the same ASGI app, and with its RSGI interface; only when importable:
  `uv run --with granian python bench/redirect/servers.py` (Granian is not a dependency of Clearline).

Every server runs one process (one worker); wrk runs `-t2` at 8 and 64 connections, in rounds whose server order
rotates. CPU µs/req is utime + stime of the server's process tree over the requests wrk completed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402 - the benchmark's own helpers, next to this file
    HERE,
    NGINX,
    NGINX_CONF,
    WRK_DONE_HOOK,
    Server,
    free_port,
    run_wrk,
    running,
    server_cpu_seconds,
    wait_until_serving,
)

LOCATION = "https://shop.acme-beauty.com/collections/glow"


def candidates(work: Path) -> list[Server]:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port, location=LOCATION))
    servers = [
        Server("nginx", [NGINX, "-p", str(work), "-e", "stderr", "-c", str(conf)], port, env, signal.SIGQUIT, "")
    ]
    uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning", "--lifespan", "off"]
    port = free_port()
    servers.append(
        Server("uvicorn-asgi", [*uvicorn, "--port", str(port), "floor_app:app"], port, env, signal.SIGINT, "")
    )
    port = free_port()
    raw = [*uvicorn, "--port", str(port), "--http", "floor_app:RawProtocol", "floor_app:app"]
    servers.append(Server("uvicorn-raw-protocol", raw, port, env, signal.SIGINT, ""))
    if importlib.util.find_spec("granian"):
        granian = [sys.executable, "-m", "granian", "--host", "127.0.0.1", "--workers", "1", "--log-level", "warning"]
        granian += ["--no-ws"]
        for name, interface, target in (
            ("granian-asgi", "asginl", "floor_app:app"),
            ("granian-rsgi", "rsgi", "floor_app:rsgi_app"),
        ):
            port = free_port()
            command = [*granian, "--port", str(port), "--interface", interface, target]
            servers.append(Server(name, command, port, env, signal.SIGINT, ""))
    return servers


def libraries(pid: int) -> str:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return ", ".join(name for name in ("uvloop", "httptools") if f"/{name}/" in maps) or "neither"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 64])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clearline-servers-") as tmp:
        work = Path(tmp)
        args.hook = work / "done.lua"
        args.hook.write_text(WRK_DONE_HOOK)
        args.code = "x"
        servers = candidates(work)
        with contextlib.ExitStack() as stack:
            for server in servers:
                server.proc = stack.enter_context(running(server, work))
            for server in servers:
                wait_until_serving(server, work)
            for server in servers:
                if server.name.startswith("uvicorn"):
                    print(f"{server.name}: pid {server.proc.pid} has {libraries(server.proc.pid)} loaded")
                run_wrk(server, args, args.connections[0], 1)  # warm-up
            cpu: dict[tuple[str, int], list[tuple[float, int, float]]] = {}
            for round_ in range(args.rounds):
                order = servers[round_ % len(servers) :] + servers[: round_ % len(servers)]
                for connections in args.connections:
                    for server in order:
                        before = server_cpu_seconds(server.proc.pid)
                        result = run_wrk(server, args, connections, args.seconds)
                        time.sleep(0.25)
                        spent = server_cpu_seconds(server.proc.pid) - before
                        cpu.setdefault((server.name, connections), []).append((spent, result.requests, result.p99_ms))
    load = os.getloadavg()
    print(
        f"\n{args.rounds} round(s) of {args.seconds:g} s, wrk -t2; load average at the end {load[0]:.2f} {load[1]:.2f}"
    )
    print(f"{'server':22s} {'conns':>5s} {'requests':>9s} {'CPU µs/req':>10s} {'× nginx':>8s} {'p99 ms (median)':>16s}")
    for connections in args.connections:
        spent, requests, _ = zip(*cpu[("nginx", connections)], strict=True)
        nginx = sum(spent) * 1e6 / sum(requests)
        for server in servers:
            spent, requests, p99 = zip(*cpu[(server.name, connections)], strict=True)
            us = sum(spent) * 1e6 / sum(requests)
            p99_median = sorted(p99)[len(p99) // 2]
            print(
                f"{server.name:22s} {connections:5d} {sum(requests):9d} {us:10.1f} {us / nginx:8.2f} {p99_median:16.2f}"
            )


if __name__ == "__main__":
    main()
