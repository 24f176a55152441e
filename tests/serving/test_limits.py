"""Limits before any body is read or any token checked: 413 for a body over the limit (declared or
streamed), 401 for a protected route without a valid token before its body is read, 429 past a client's
rate. Each answer is a problem-details body.

The first three talk raw HTTP over a socket and send the headers only: a server that waited for the
body (as one that reads bodies before checking anything does) would never answer within the timeout.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlparse

import pytest

LIMIT = 64 * 1024


def exchange(base_url: str, head: str, timeout: float = 3.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers, no body) and read the answer; fail on a timeout."""
    url = urlparse(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as conn:
        conn.sendall(head.encode("latin-1") + b"\r\n")
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data or len(data) < _expected(data):
            if time.monotonic() > deadline:
                pytest.fail(f"no answer within {timeout} s: the server is waiting for the body ({data[:200]!r})")
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                pytest.fail(f"no answer within {timeout} s: the server is waiting for the body ({data[:200]!r})")
            if not chunk:
                break
            data += chunk
    header, _, body = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def _expected(data: bytes) -> int:
    header, sep, _ = data.partition(b"\r\n\r\n")
    for line in header.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(header) + len(sep) + int(value)
    return 0


def head(method: str, path: str, *, length: int | None = None, token: str | None = None) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture
def live(serve, tokens):
    return serve(max_body_bytes=LIMIT)


def test_a_declared_oversize_body_is_refused_before_it_is_read(live, tokens):
    for token in (None, tokens["supervisor"]):
        status, headers, body = exchange(live.base_url, head("POST", "/v1/sampling/draws", length=10**9, token=token))
        assert status == 413
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["status"] == 413 and f"{LIMIT:,} bytes" in problem["detail"]


def test_a_streamed_body_is_cut_off_at_the_limit(live, tokens):
    def chunks():
        for _ in range(4 * LIMIT // 4096):
            yield b"x" * 4096

    with live.client(tokens["supervisor"]) as client:
        response = client.post("/v1/sampling/draws", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "must not exceed" in response.json()["detail"]


def test_a_protected_route_wants_a_valid_token_before_its_body(live):
    for token in (None, "ipc_not-a-token"):
        status, headers, body = exchange(live.base_url, head("POST", "/v1/entities/risk", length=1000, token=token))
        assert status == 401
        assert headers["www-authenticate"] == "Bearer"
        assert json.loads(body)["type"] == "about:blank"


def test_public_routes_need_no_token(live):
    with live.client() as client:
        assert client.get("/health").status_code == 200
        assert client.get("/v1/public/lists", params={"list": "red"}).status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_a_client_over_its_rate_gets_429_with_retry_after(serve):
    live = serve(rate_limit_per_second=1, rate_limit_burst=3)
    with live.client() as client:
        answers = [client.get("/health") for _ in range(10)]
    statuses = [a.status_code for a in answers]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses, statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert "too many requests" in refused.json()["detail"]
    time.sleep(1.1)
    with live.client() as client:
        assert client.get("/health").status_code == 200, "the bucket refills"


def test_the_bodies_held_at_once_are_bounded_across_clients(serve, tokens):
    live = serve(max_body_bytes=LIMIT, max_inflight_body_bytes=LIMIT + LIMIT // 2)
    url = urlparse(live.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as slow:
        # One client is part-way through a large body (the server holds what has arrived) ...
        slow.sendall(head("POST", "/v1/entities/risk", length=LIMIT, token=tokens["analyst"]).encode() + b"\r\n")
        slow.sendall(b"x" * (LIMIT - 1024))
        time.sleep(0.5)
        # ... so another's body that would take the total past the budget is refused at once.
        status, headers, body = exchange(
            live.base_url, head("POST", "/v1/entities/risk", length=LIMIT // 2 + 4096, token=tokens["analyst"])
        )
        assert status == 503 and headers["retry-after"] == "1"
        assert json.loads(body)["type"] == "urn:ipcredit:problem:unavailable"
    time.sleep(0.5)
    with live.client(tokens["analyst"]) as client:
        response = client.post("/v1/entities/risk", json={"entity_ids": ["91210600MA0QC0K819"]})
        assert response.status_code == 200, "the budget is freed when the request ends"


def test_the_pages_refusals_are_pages(serve):
    """A refusal made before any route (the body limit, the rate) answers a page with a page, not JSON."""
    live = serve(max_body_bytes=LIMIT, rate_limit_per_second=1, rate_limit_burst=3)
    status, headers, body = exchange(live.base_url, head("POST", "/ui/sign-in", length=10**9))
    assert status == 413
    assert headers["content-type"].startswith("text/html") and headers["connection"] == "close"
    page = body.decode()
    assert "请求过大" in page and f"{LIMIT:,} bytes" in page
    time.sleep(1.1)  # the bucket the request above took from refills
    with live.client() as client:
        answers = [client.get("/ui/public/draws") for _ in range(10)]
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["content-type"].startswith("text/html")
    assert int(refused.headers["retry-after"]) >= 1
    assert "请求过多" in refused.text and "too many requests" in refused.text
