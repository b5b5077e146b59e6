"""Throwaway database servers for tests: a real MariaDB started from Debian's package, and
the nx-27017 MongoDB wire-protocol server (or the real MongoDB ``PENCHANT_MONGO_URI`` names).

Tests that need one skip when the server binaries are absent, unless
``PENCHANT_REQUIRE_SERVERS=1`` (set by ``.ci/run``), where a missing server is a failure: CI
must never pass by skipping what it was meant to test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

#: The password of the test user: the secret that the masking tests look for everywhere.
MARIADB_PASSWORD = "s3cret-db-pw"
MARIADB_USER = "penchant"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing(what: str) -> None:
    """Skip, or fail under CI, for a server that cannot be started here."""
    if os.environ.get("PENCHANT_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{what} (PENCHANT_REQUIRE_SERVERS=1)")
    pytest.skip(what, allow_module_level=True)


def _binary(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()),
        None)


@dataclass
class MariaDB:
    process: subprocess.Popen
    port: int
    socket: Path
    client: str

    def sql(self, statement: str) -> None:
        """Run ``statement`` as root over the socket (setup only)."""
        subprocess.run([self.client, "--no-defaults", f"--socket={self.socket}", "-uroot",
                        "-e", statement], check=True, capture_output=True, timeout=60)

    def url(self, database: str, password: str = MARIADB_PASSWORD) -> str:
        return (f"mysql+pymysql://{MARIADB_USER}:{password}@127.0.0.1:{self.port}/"
                f"{database}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.socket.parent, ignore_errors=True)


def start_mariadb() -> MariaDB:
    """A server in a fresh folder under the system's temp dir: pytest's own temp folders
    are private to root, and mariadbd runs as the mysql user."""
    server, install, client = (_binary(n) for n in ("mariadbd", "mariadb-install-db",
                                                    "mariadb"))
    if not (server and install and client):
        missing("MariaDB is not installed (apt-get install mariadb-server)")
    folder = Path(tempfile.mkdtemp(prefix="penchant-mariadb-"))
    data = folder / "data"
    data.mkdir()
    as_root = os.geteuid() == 0
    if as_root:  # mariadbd refuses to run as root; its files must belong to mysql
        shutil.chown(folder, "mysql")
        shutil.chown(data, "mysql")
    user = ["--user=mysql"] if as_root else []
    subprocess.run([install, "--no-defaults", *user, f"--datadir={data}",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True, timeout=120)
    port, sock = free_port(), folder / "mysqld.sock"
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [server, "--no-defaults", *user, f"--datadir={data}", f"--socket={sock}",
         f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={folder / 'mysqld.pid'}",
         "--skip-log-bin"], stdout=log, stderr=subprocess.STDOUT)
    db = MariaDB(process, port, sock, client)
    deadline = time.monotonic() + 60
    while True:
        try:
            db.sql("SELECT 1")
            break
        except subprocess.CalledProcessError:
            if process.poll() is not None or time.monotonic() > deadline:
                db.stop()
                pytest.fail("MariaDB did not start: "
                            + (folder / "server.log").read_text()[-2000:])
            time.sleep(0.2)
    db.sql(f"CREATE USER '{MARIADB_USER}'@'%' IDENTIFIED BY '{MARIADB_PASSWORD}'; "
           f"GRANT ALL ON *.* TO '{MARIADB_USER}'@'%'")
    return db


@dataclass
class MongoServer:
    uri: str
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_mongo(folder: Path) -> MongoServer:
    """``PENCHANT_MONGO_URI`` when set; otherwise nx-27017 on a free loopback port."""
    given = os.environ.get("PENCHANT_MONGO_URI")
    if given:
        return MongoServer(given)
    try:
        import pymongo
    except ImportError:
        missing("pymongo is not installed")
    local = Path(sys.executable).parent / "nx-27017"
    binary = str(local) if local.exists() else shutil.which("nx-27017")
    if binary is None:
        missing("no MongoDB to test against: install nx-27017 or set PENCHANT_MONGO_URI")
    port = free_port()
    with (folder / "output").open("w") as output:
        process = subprocess.Popen(
            [binary, "--data-dir", "memory", "--host", "127.0.0.1", "-p", str(port),
             "--pid-file", str(folder / "pid"), "--log-file", str(folder / "log")],
            cwd=folder, stdout=output, stderr=subprocess.STDOUT)
    server = MongoServer(f"mongodb://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            pytest.fail(f"nx-27017 exited: {(folder / 'output').read_text()[-2000:]}")
        try:
            with pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=200) as client:
                client.admin.command("ping")
            return server
        except pymongo.errors.PyMongoError:
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail("nx-27017 did not answer a ping within 20 s")
            time.sleep(0.1)
