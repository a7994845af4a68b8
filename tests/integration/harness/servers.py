"""The server under test, as a real process on loopback.

The suite is written against the RFCs, not against amphi's internals, so the same tests can
run against a reference server. `TEST_SERVER=prosody` runs them against Prosody; that is how
the tests themselves were checked before amphi could run them. Each server class knows how to
write its own config, create accounts, start, stop and restart on the same data and ports.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DOMAIN = "localhost"


@dataclass
class ServerOptions:
    """What a test module may ask of its server; defaults follow the issue's test config."""

    registration: bool = True
    require_encryption: bool = True
    auth_timeout_s: int = 2
    max_stanza_size: int = 262144
    max_depth: int = 64
    # XEP-0157 addresses, by form field name ("admin-addresses", ...).
    contact_addresses: dict[str, list[str]] = field(default_factory=dict)


def free_port() -> int:
    """A port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"server exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerError(f"server did not listen on 127.0.0.1:{port} within {timeout}s")


class ServerError(RuntimeError):
    pass


class Server:
    """Common process handling; subclasses write the config and know the commands."""

    name = "server"

    def __init__(self, workdir: Path, options: ServerOptions):
        self.workdir = workdir
        self.options = options
        self.domain = DOMAIN
        self.starttls_port = free_port()
        self.direct_tls_port = free_port()
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen | None = None
        self.exit_codes: list[int] = []
        workdir.mkdir(parents=True, exist_ok=True)
        self.write_config()

    # -- to implement ----------------------------------------------------------------------
    def write_config(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def add_user(self, user: str, password: str) -> None:
        raise NotImplementedError

    # -- process ---------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")
        log.write(f"\n===== {self.name} start at {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            self.command(),
            env={**os.environ, "NO_COLOR": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        try:
            wait_for_port(self.starttls_port, self.proc, timeout)
            wait_for_port(self.direct_tls_port, self.proc, timeout)
        except ServerError as e:
            self.kill()
            raise ServerError(f"{e}\n--- log tail ---\n{self.log_tail()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> bool:
        """Stop the process; True when it exited by itself within `timeout` after `sig`."""
        if self.proc is None:
            return True
        graceful = True
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                graceful = False
                self.kill()
        self.exit_codes.append(self.proc.returncode)
        self.proc = None
        return graceful

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def restart(self, sig: int = signal.SIGTERM) -> None:
        graceful = self.stop(sig)
        if sig == signal.SIGTERM and not graceful:
            raise ServerError(f"{self.name} did not exit within 10 s of SIGTERM")
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, since: int = 0, limit: int = 60_000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(since, self.log_size() - limit))
                return ANSI.sub("", f.read().decode("utf-8", "replace"))
        except FileNotFoundError:
            return "(no log)"


class AmphiServer(Server):
    name = "amphi"

    @staticmethod
    def binary() -> Path:
        return Path(os.environ.get("AMPHI_BIN", REPO / "target" / "debug" / "amphi"))

    def write_config(self) -> None:
        o = self.options
        self.config_path = self.workdir / "amphi.toml"
        lines = [
            "[server]",
            f'domain = "{self.domain}"',
            f'data_dir = "{self.workdir / "data"}"',
            'log_format = "text"',
            f'log_level = "{os.environ.get("AMPHI_TEST_LOG_LEVEL", "info,amphi=debug")}"',
            "",
            "[c2s]",
            f'starttls_listen = ["127.0.0.1:{self.starttls_port}"]',
            f'direct_tls_listen = ["127.0.0.1:{self.direct_tls_port}"]',
            f"require_encryption = {str(o.require_encryption).lower()}",
            f"max_stanza_size = {o.max_stanza_size}",
            f"max_depth = {o.max_depth}",
            f'auth_timeout = "{o.auth_timeout_s}s"',
            "",
            "[auth]",
            f"registration = {str(o.registration).lower()}",
            "scram_iterations = 4096",
            # Throttling as in the default config, written out because tests count on it.
            "max_failures = 5",
            "max_failures_per_ip = 20",
            'failure_window = "60s"',
        ]
        if o.contact_addresses:
            # XEP-0157: one array per form field, named as in the form without "-addresses".
            lines += ["", "[contact]"]
            for fieldname, uris in o.contact_addresses.items():
                key = fieldname.removesuffix("-addresses")
                lines.append(f"{key} = [{', '.join(repr_toml(u) for u in uris)}]")
        self.config_path.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        return [str(self.binary()), "--config", str(self.config_path), "serve"]

    def add_user(self, user: str, password: str) -> None:
        """`amphi user add` with the password on stdin, as the issue requires (never argv)."""
        if self.alive():
            raise ServerError("amphi's store is opened by the running server: add users before start")
        res = subprocess.run(
            [str(self.binary()), "--config", str(self.config_path), "user", "add", f"{user}@{self.domain}"],
            input=(password + "\n").encode(),
            capture_output=True,
            timeout=60,
        )
        if res.returncode != 0:
            raise ServerError(
                f"amphi user add {user}@{self.domain} failed ({res.returncode}):\n"
                f"{res.stdout.decode(errors='replace')}{res.stderr.decode(errors='replace')}"
            )


def repr_toml(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ProsodyServer(Server):
    """Prosody 0.12 as the reference: same ports, same limits, same accounts."""

    name = "prosody"
    _cert_dir: Path | None = None

    @classmethod
    def cert_dir(cls, base: Path) -> Path:
        """One self-signed pair per test run (openssl costs ~100 ms)."""
        if cls._cert_dir is None:
            d = base / "prosody-certs"
            d.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=localhost", "-keyout", str(d / "localhost.key"),
                 "-out", str(d / "localhost.crt")],
                check=True, capture_output=True,
            )
            cls._cert_dir = d
        return cls._cert_dir

    def write_config(self) -> None:
        o = self.options
        certs = self.cert_dir(self.workdir.parent)
        (self.workdir / "data").mkdir(exist_ok=True)
        self.config_path = self.workdir / "prosody.cfg.lua"
        contact = ""
        if o.contact_addresses:
            parts = []
            for fieldname, uris in o.contact_addresses.items():
                key = fieldname.removesuffix("-addresses")
                parts.append(f'{key} = {{ {", ".join(lua_str(u) for u in uris)} }}')
            contact = "contact_info = { " + "; ".join(parts) + " }"
        self.config_path.write_text(f"""
run_as_root = true
daemonize = false
pidfile = {lua_str(str(self.workdir / "prosody.pid"))}
data_path = {lua_str(str(self.workdir / "data"))}
log = {{ debug = {lua_str(str(self.log_path))} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.starttls_port} }}
c2s_direct_tls_ports = {{ {self.direct_tls_port} }}
modules_disabled = {{ "s2s" }}
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping", "version", "uptime",
  "lastactivity", "vcard", "register", "server_contact_info", "time" }}
c2s_require_encryption = {str(o.require_encryption).lower()}
allow_registration = {str(o.registration).lower()}
authentication = "internal_hashed"
c2s_timeout = {o.auth_timeout_s}
c2s_stanza_size_limit = {o.max_stanza_size}
limits = {{ c2s = {{ rate = "100mb/s" }} }}
certificates = {lua_str(str(certs))}
ssl = {{ key = {lua_str(str(certs / "localhost.key"))}, certificate = {lua_str(str(certs / "localhost.crt"))} }}
{contact}
VirtualHost "localhost"

-- The reference MUC for test_muc.py (XEP-0045, archive by XEP-0313).
Component "conference.localhost" "muc"
  modules_enabled = {{ "muc_mam" }}
""")

    def command(self) -> list[str]:
        return ["prosody", "-F", "--config", str(self.config_path)]

    def add_user(self, user: str, password: str) -> None:
        res = subprocess.run(
            ["prosodyctl", "--config", str(self.config_path), "register", user, self.domain, password],
            capture_output=True, timeout=60,
        )
        if res.returncode != 0:
            raise ServerError(f"prosodyctl register {user} failed: {res.stdout!r} {res.stderr!r}")


def lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


SERVERS = {"amphi": AmphiServer, "prosody": ProsodyServer}


def server_kind() -> str:
    kind = os.environ.get("TEST_SERVER", "amphi")
    if kind not in SERVERS:
        raise SystemExit(f"TEST_SERVER={kind!r}: choose one of {', '.join(SERVERS)}")
    return kind


def make_server(workdir: Path, options: ServerOptions) -> Server:
    cls = SERVERS[server_kind()]
    if cls is ProsodyServer and shutil.which("prosody") is None:
        raise ServerError("prosody is not installed (apt-get install prosody)")
    return cls(workdir, options)
