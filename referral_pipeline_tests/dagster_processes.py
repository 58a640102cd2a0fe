"""Starting `dagster dev` (webserver + daemon) for a test, talking to its GraphQL API, and stopping
every process it started, also when the test fails."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

DAGSTER = Path(sys.executable).parent / "dagster"
MODULE = "referral_pipeline.definitions"
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _default_signals() -> None:
    """In the child, before exec: default SIGINT/SIGTERM handling, whatever the parent (pytest under a
    CI runner, say) ignores; a child that inherits SIG_IGN would pass it on to dagster dev's children."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group is left (zombies of our own children count until reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[str]:
    """`pid command` of the processes in the group, for error messages (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                members.append(f"{entry.name} [{fields[0]}] {cmdline.strip()}")
        except (OSError, ValueError, IndexError):
            continue
    return members


class GraphQLError(AssertionError):
    pass


@dataclass
class DagsterDev:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pgid(self) -> int:
        return self.process.pid  # start_new_session=True: the leader's pid is the group's id

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        """POST a query to /graphql; the `data`, or a GraphQLError naming the errors."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            raise GraphQLError(f"HTTP {exc.code} from /graphql: {exc.read()[:3000]!r}") from exc
        if payload.get("errors"):
            raise GraphQLError(f"GraphQL errors: {json.dumps(payload['errors'], indent=1)[:5000]}")
        return payload["data"]

    def wait_until_loaded(self, location: str, timeout: float = 120) -> None:
        """Until /server_info answers and the code location's repository is loaded."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"dagster dev exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
                    response.read()
                data = self.graphql(WORKSPACE_QUERY, timeout=10)
                entries = data["workspaceOrError"].get("locationEntries", [])
                entry = next((e for e in entries if e["name"] == location), None)
                if entry is None:
                    last = f"no location {location!r} among {[e['name'] for e in entries]}"
                elif entry["loadStatus"] != "LOADED":
                    last = f"location {location!r} is {entry['loadStatus']}"
                elif entry["locationOrLoadError"]["__typename"] != "RepositoryLocation":
                    raise AssertionError(f"code location failed to load: {entry['locationOrLoadError']}")
                else:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, GraphQLError) as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise AssertionError(f"dagster dev not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}")


WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
  }
}
"""


def stop_group(process: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the process group, wait up to ``timeout`` for all of it to go, then SIGKILL the group."""
    pgid = process.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()  # reap the leader once it exits, so it does not linger as a zombie
        if not group_alive(pgid):
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    # Orphaned members (reparented to init) are reaped by it shortly after SIGKILL.
    deadline = time.monotonic() + 10
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)


@contextmanager
def dagster_dev(cwd: Path, env: dict[str, str], log_path: Path, location: str) -> Iterator[DagsterDev]:
    """`dagster dev` on a free loopback port, in its own session (process group); every process of
    the group is stopped on exit, and the exit fails if any survives."""
    port = free_port()
    log: IO[bytes] = log_path.open("wb")
    process = subprocess.Popen(
        [str(DAGSTER), "dev", "-m", MODULE, "-h", "127.0.0.1", "-p", str(port)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        restore_signals=True,
        preexec_fn=_default_signals,
    )
    server = DagsterDev(process=process, port=port, log_path=log_path)
    try:
        yield server
    finally:
        try:
            stop_group(process)
        finally:
            log.close()
        survivors = group_members(server.pgid)
        assert not group_alive(server.pgid), (
            "processes of dagster dev's group survived SIGTERM and SIGKILL:\n" + "\n".join(survivors)
        )
