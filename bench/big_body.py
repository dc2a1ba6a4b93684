"""python -m bench.big_body [--megabytes 1024]: stream a large request body at a real gunicorn server
and measure its worker's memory (issue 13: "a 1 GB request body is refused without the server's
memory growing by more than a few MB").

A throwaway ledger (SQLite and a filesystem broker in a temporary folder, migrated, one organisation,
a QA engineer's API token) is served by gunicorn with one sync worker, as docker-compose serves it.
Each case offers ``--megabytes`` of body to one endpoint, three ways:

- ``declared``: a ``Content-Length`` of the whole body (refused before any of it is read);
- ``chunked``: ``Transfer-Encoding: chunked``, no length (read as it comes, refused past the limit);
- ``lying``: ``Content-Length: 1000`` followed by the whole body (read only as far as declared).

The client sends 64 KB at a time and stops as soon as the server answers. The worker's resident set
(VmRSS) and its peak (VmHWM) are read from /proc before and after each case, after a warm-up of the
same case (the same size), so what is measured is what the body costs, not the first request's imports; the peak
is reset (``/proc/PID/clear_refs``) before each case, and the growth is that peak over the RSS before. The second
server limits capture documents to ``--read-megabytes`` (512 by default), so a chunked body is read
that far through the bounded stream (spooled to a temporary file) before it is refused.

tests/test_body_memory.py runs the same measurement on 200 MB against the test database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIECE = 64 * 1024
LYING_LENGTH = 1_000
MODES = ("declared", "chunked", "lying")


def memory_kib(pid: int) -> tuple[int, int]:
    """The process's resident set and its peak (VmRSS, VmHWM), in KiB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def peak_reset(pid: int) -> None:
    """Start the process's VmHWM afresh from its VmRSS (Linux's clear_refs, value 5), where allowed."""
    # Where not allowed, the peak is the process's since it started: the growth reads no smaller.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command may hold spaces and parentheses: the parent pid is the second field after the last ')'.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


@dataclass(frozen=True)
class Answer:
    status: int | None
    sent: int  # bytes of body the client got onto the wire before the server answered
    seconds: float
    body: bytes


def send(
    address: tuple[str, int], path: str, *, total: int, mode: str, headers: Mapping[str, str] | None = None
) -> Answer:
    """POST ``total`` bytes of ``[`` (JSON nested as deep as it goes) to ``path``, as ``mode`` says."""
    host, port = address
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if mode == "declared":
        lines.append(f"Content-Length: {total}")
    elif mode == "lying":
        lines.append(f"Content-Length: {LYING_LENGTH}")
    elif mode == "chunked":
        lines.append("Transfer-Encoding: chunked")
    else:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    started = time.monotonic()
    sent = 0
    with socket.create_connection(address, timeout=60) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        piece = b"[" * PIECE
        framed = f"{PIECE:x}\r\n".encode() + piece + b"\r\n" if mode == "chunked" else piece
        try:
            while sent < total:
                readable, writable, _ = select.select([sock], [sock], [], 60)
                if readable:
                    break  # the server has answered: it reads no more
                if writable:
                    sock.sendall(framed)  # 64 KB fits the socket's buffer once it is writable
                    sent += PIECE
            else:
                if mode == "chunked":
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        try:
            while data := sock.recv(65536):
                received += data
        except (ConnectionResetError, TimeoutError):
            pass
    status = None
    if received.startswith(b"HTTP/"):
        status = int(received.split(b" ", 2)[1])
    body = received.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in received else b""
    return Answer(status, min(sent, total), time.monotonic() - started, body)


@dataclass
class Server:
    address: tuple[str, int]
    master: subprocess.Popen

    @property
    def worker(self) -> int:
        (pid,) = children_of(self.master.pid)
        return pid


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(env: Mapping[str, str]) -> Iterator[Server]:
    """gunicorn serving the ledger with one sync worker, on a free local port, until the block ends."""
    port = _free_port()
    master = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "traceability.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=dict(env),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if master.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {master.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                if children_of(master.pid):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not listen within 60 s")
            time.sleep(0.2)
        yield Server(("127.0.0.1", port), master)
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=30)
        except subprocess.TimeoutExpired:
            master.kill()


@dataclass(frozen=True)
class Measured:
    path: str
    mode: str
    answer: Answer
    rss_before: int
    rss_after: int
    peak_before: int
    peak_after: int

    @property
    def growth_kib(self) -> int:
        """How far the worker's memory rose: its peak over what it held before (KiB)."""
        return max(self.rss_after, self.peak_after) - self.rss_before

    def line(self) -> str:
        a = self.answer
        return (
            f"  {self.path:22} {self.mode:9} {a.status!s:>6} {a.sent / 2**20:>10,.1f} {a.seconds:>7.2f}"
            f" {self.rss_before / 1024:>9,.1f} {self.rss_after / 1024:>9,.1f} {self.peak_after / 1024:>9,.1f}"
            f" {self.growth_kib / 1024:>+8,.1f}"
        )


HEADER = (
    f"  {'endpoint':22} {'mode':9} {'status':>6} {'sent MB':>10} {'s':>7} {'RSS MB':>9} {'after':>9}"
    f" {'peak':>9} {'peak +':>8}"
)


def measure(server: Server, path: str, *, total: int, mode: str, headers: Mapping[str, str], warm_up: int) -> Measured:
    """One case: a warm-up of ``warm_up`` bytes, then ``total`` bytes, the worker's memory around it."""
    send(server.address, path, total=warm_up, mode=mode, headers=headers)
    worker = server.worker
    peak_reset(worker)
    rss_before, peak_before = memory_kib(worker)
    answer = send(server.address, path, total=total, mode=mode, headers=headers)
    rss_after, peak_after = memory_kib(worker)
    return Measured(path, mode, answer, rss_before, rss_after, peak_before, peak_after)


def ledger_env(var_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a throwaway embedded ledger in ``var_dir``."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    # Served over plain HTTP on purpose: no redirect to HTTPS.
    plain = {"LEDGER_PLAIN_HTTP": "1"}
    return {**env, **plain, "LEDGER_VAR_DIR": str(var_dir), "MEDIA_ROOT": str(var_dir / "media"), **settings}


def _manage(env: Mapping[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=dict(env), capture_output=True, text=True, check=True
    )
    return done.stdout


def throwaway_ledger(var_dir: Path) -> str:
    """Migrate a ledger in ``var_dir`` and register an organisation with a QA engineer: its token."""
    env = ledger_env(var_dir)
    _manage(env, "migrate", "--no-input", "-v", "0")
    _manage(env, "organisation", "add", "bench", "--name", "Bench Power", "--role", "brand")
    return _manage(env, "user", "add", "bench-qa", "--organisation", "bench", "--token").strip().splitlines()[-1]


CASES = (
    ("/epcis/capture", "application/ld+json"),
    ("/epcis/events", "application/json"),
    ("/api/v1/findings/", "application/json"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=1024, help="body offered per case (default 1024)")
    parser.add_argument(
        "--read-megabytes", type=int, default=512, help="the second server's capture limit (default 512)"
    )
    options = parser.parse_args()
    total = options.megabytes * 2**20
    with tempfile.TemporaryDirectory(prefix="big-body-") as folder:
        var_dir = Path(folder)
        token = throwaway_ledger(var_dir)
        print(f"{options.megabytes:,} MB offered per case, gunicorn with one sync worker; memory of the worker")
        servers = (
            ("default limits", ledger_env(var_dir), CASES),
            (
                f"capture limit {options.read_megabytes} MB (read that far, then refused)",
                ledger_env(var_dir, LEDGER_MAX_CAPTURE_BYTES=str(options.read_megabytes * 2**20)),
                CASES[:1],
            ),
        )
        for title, env, cases in servers:
            print(f"\n{title}\n{HEADER}")
            with gunicorn(env) as server:
                for path, content_type in cases:
                    headers = {"Authorization": f"Token {token}", "Content-Type": content_type}
                    for mode in MODES:
                        print(measure(server, path, total=total, mode=mode, headers=headers, warm_up=total).line())


if __name__ == "__main__":
    main()
