#!/usr/bin/env python3
"""The database side of a send as the functions call it: POST /rpc/send_message
through the PostgREST server (postrust), N sends one after another over one
kept-alive connection, and the CPU time that costs the PostgREST server process
and the Postgres backends serving it, read from /proc before and after.

    send_message_rest.py DATABASE_URL TARGET SENDS

DATABASE_URL is a superuser's URL of a database seeded by seed.sql (beside
this script); TARGET is room or group, or floor: the same number of calls of
public.bench_noop(), an RPC that does nothing (the caller creates it), for
what the PostgREST path costs before any SQL of ours runs. The PostgREST
server is started here on a free port, as the local stack starts it
(postrust on PATH), logging in as authenticator (whose password it sets),
and stopped at the end. Prints one line of JSON.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def psql(database_url, sql):
    return subprocess.run(
        ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", database_url, "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def service_role_token(secret):
    """An HS256 JWT for service_role, as the functions' service key is."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=")
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"role": "service_role", "exp": int(time.time()) + 3600}).encode())
    signature = b64(hmac.new(secret.encode(), header + b"." + claims, hashlib.sha256).digest())
    return (header + b"." + claims + b"." + signature).decode()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main():
    database_url, target, sends = sys.argv[1], sys.argv[2], int(sys.argv[3])
    url = urllib.parse.urlparse(database_url)
    secret = "a-local-secret-of-at-least-thirty-two-characters"
    password = uuid.uuid4().hex
    psql(database_url, f"alter role authenticator password '{password}'")
    authenticator_url = url._replace(netloc=f"authenticator:{password}@{url.hostname}:{url.port}").geturl()

    senders = [] if target == "floor" else [
        line.split("|")
        for line in psql(
            database_url,
            f"select s.user_id, s.conversation_id from bench.{target}_senders s "
            f"order by (s.n * 7919) % (select count(*) from bench.{target}_senders)",
        ).splitlines()
    ]

    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": authenticator_url,
        "PGRST_DB_SCHEMAS": "public",
        "PGRST_DB_ANON_ROLE": "anon",
        "PGRST_JWT_SECRET": secret,
        "PGRST_SERVER_HOST": "127.0.0.1",
        "PGRST_SERVER_PORT": str(port),
        "PGRST_COMPAT_MODE": "true",
        "PGRST_LOG_LEVEL": "warn",
        "NO_COLOR": "1",
    }
    server = subprocess.Popen(["postrust"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        headers = {
            "Authorization": "Bearer " + service_role_token(secret),
            "apikey": "unused",
            "Content-Type": "application/json",
        }
        deadline = time.time() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port)
                connection.request("GET", "/")
                connection.getresponse().read()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("postrust did not start")
                time.sleep(0.1)

        run = uuid.uuid4().hex[:8]

        def send(n):
            if target == "floor":
                connection.request("POST", "/rpc/bench_noop", "{}", headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    raise SystemExit(f"bench_noop answered {response.status}: {answer[:300]!r}")
                return
            user_id, conversation_id = senders[n % len(senders)]
            body = json.dumps({
                "p_sender": user_id,
                "p_conversation_id": conversation_id,
                "p_client_msg_id": f"rest-{target}-{run}-{n}",
                "p_kind": "text",
                "p_body": "a message of ordinary length for the benchmark",
                "p_rate_per_minute": 100000,
                "p_rate_burst": 100000,
            })
            connection.request("POST", "/rpc/send_message", body, headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise SystemExit(f"send_message answered {response.status}: {answer[:300]!r}")

        # Warm-up: the server's pool connections and their plan caches.
        for n in range(20):
            send(n)

        backends = psql(
            database_url,
            "select string_agg(pid::text, ' ') from pg_stat_activity where usename = 'authenticator'",
        ).split()
        before_server = cpu_seconds(server.pid)
        before_backends = sum(cpu_seconds(pid) for pid in backends)
        started = time.time()
        for n in range(20, 20 + sends):
            send(n)
        elapsed = time.time() - started
        # The pool may open connections during the run: theirs counts whole.
        backends_after = psql(
            database_url,
            "select string_agg(pid::text, ' ') from pg_stat_activity where usename = 'authenticator'",
        ).split()
        gone = set(backends) - set(backends_after)
        if gone:
            raise SystemExit(f"connections of the server closed during the run: {sorted(gone)}")
        server_ms = (cpu_seconds(server.pid) - before_server) * 1000 / sends
        postgres_ms = (sum(cpu_seconds(pid) for pid in backends_after) - before_backends) * 1000 / sends
        print(json.dumps({
            "sends_into": target,
            "sends": sends,
            "postgrest_cpu_ms_per_send": round(server_ms, 3),
            "postgres_cpu_ms_per_send": round(postgres_ms, 3),
            "database_side_cpu_ms_per_send": round(server_ms + postgres_ms, 3),
            "wall_ms_per_send": round(elapsed * 1000 / sends, 3),
        }))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
