"""RetryPolicy on its own, no network: every branch of the decision to retry, and how long to wait.

The rules are RFC 9110's (§9.2.2 idempotent methods; §15.5.20/§15.6.4: 429 and 503 mean the request was
not acted on) and httpx's split of its transport errors (a connect error is raised before a byte is sent).
"""

from __future__ import annotations

import httpx
import pytest

from ocinb._http.retry import RetryPolicy

POLICY = RetryPolicy(retries=3, backoff=1.0, backoff_max=8.0, max_retry_after=60.0)
REQ = httpx.Request("GET", "https://registry.example/v2/")

CONNECT = [httpx.ConnectError("refused", request=REQ), httpx.ConnectTimeout("slow", request=REQ),
           httpx.PoolTimeout("pool full", request=REQ)]
DROPPED = [httpx.ReadError("reset", request=REQ), httpx.RemoteProtocolError("cut", request=REQ),
           httpx.ReadTimeout("slow body", request=REQ), httpx.WriteError("broken pipe", request=REQ),
           httpx.DecodingError("bad gzip", request=REQ)]


def backoff_bounds(attempt: int) -> tuple[float, float]:
    """The jittered exponential backoff of POLICY: half to all of min(8, 1 * 2**attempt) seconds."""
    base = min(8.0, 2.0**attempt)
    return base / 2, base


@pytest.mark.parametrize("exc", CONNECT, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "PUT"])
@pytest.mark.parametrize("replayable", [True, False])
def test_connect_errors_always_retried(exc: Exception, method: str, replayable: bool) -> None:
    """Nothing reached the server: any method, any body, may be sent again."""
    wait = POLICY.wait(0, method, replayable=replayable, exc=exc)
    assert wait is not None
    low, high = backoff_bounds(0)
    assert low <= wait <= high


@pytest.mark.parametrize("exc", DROPPED, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(("method", "replayable", "retried"), [
    ("GET", True, True), ("HEAD", True, True), ("PUT", True, True), ("DELETE", True, True),
    ("OPTIONS", True, True),
    ("PUT", False, False),   # a streamed body already consumed cannot be sent as it was
    ("GET", False, False),
    ("POST", True, False),   # the server may have acted: a second POST opens a second upload
    ("PATCH", True, False),
])
def test_other_transport_errors(exc: Exception, method: str, replayable: bool, retried: bool) -> None:
    assert (POLICY.wait(1, method, replayable=replayable, exc=exc) is not None) is retried


def test_not_a_transport_error_is_not_retried() -> None:
    """An error a retry cannot cure (a bug, a URL scheme httpx lacks, a malformed request) is raised at once."""
    assert POLICY.wait(0, "GET", replayable=True, exc=ValueError("x")) is None
    for exc in (httpx.UnsupportedProtocol("ftp", request=REQ), httpx.LocalProtocolError("bad header")):
        assert POLICY.wait(0, "GET", replayable=True, exc=exc) is None


@pytest.mark.parametrize(("status", "method", "retried"), [
    (500, "GET", True), (502, "HEAD", True), (504, "PUT", True), (503, "DELETE", True),
    (429, "GET", True),
    (429, "POST", True), (503, "PATCH", True),     # refused: the server did not act on it
    (500, "POST", False), (502, "PATCH", False), (504, "POST", False),  # it may have acted
    (404, "GET", False), (401, "GET", False), (400, "PUT", False), (200, "GET", False), (501, "GET", False),
])
def test_status(status: int, method: str, retried: bool) -> None:
    for replayable in (True, False):
        assert (POLICY.wait(0, method, replayable=replayable, status=status) is not None) is retried


def test_only_the_configured_statuses() -> None:
    only_502 = RetryPolicy(statuses=frozenset({502}))
    assert only_502.wait(0, "GET", replayable=True, status=502) is not None
    assert only_502.wait(0, "GET", replayable=True, status=503) is None
    assert only_502.wait(0, "GET", replayable=True, status=429) is None


@pytest.mark.parametrize(("retry_after", "expected"), [
    (0.0, 0.0), (7.0, 7.0), (60.0, 60.0),   # honoured exactly, up to the cap
    (60.5, None), (3600.0, None),           # over the cap: give up and let the caller see the 429
])
def test_retry_after(retry_after: float, expected: float | None) -> None:
    assert POLICY.wait(0, "GET", replayable=True, status=429, retry_after=retry_after) == expected
    assert POLICY.wait(2, "POST", replayable=True, status=503, retry_after=retry_after) == expected


def test_retry_after_ignored_where_no_retry() -> None:
    """``Retry-After`` does not make a non-retryable answer retryable."""
    assert POLICY.wait(0, "POST", replayable=True, status=500, retry_after=1.0) is None
    assert POLICY.wait(0, "GET", replayable=True, status=404, retry_after=1.0) is None


def test_attempt_budget() -> None:
    """``retries=3``: attempts 0, 1, 2 may be followed by another; attempt 3 was the last."""
    for attempt in range(3):
        wait = POLICY.wait(attempt, "GET", replayable=True, status=503)
        low, high = backoff_bounds(attempt)
        assert wait is not None and low <= wait <= high
        assert POLICY.wait(attempt, "GET", replayable=True, exc=CONNECT[0]) is not None
        assert POLICY.wait(attempt, "GET", replayable=True, status=429, retry_after=1.0) == 1.0
    for attempt in (3, 4, 10):
        assert POLICY.wait(attempt, "GET", replayable=True, status=503) is None
        assert POLICY.wait(attempt, "GET", replayable=True, exc=CONNECT[0]) is None
        assert POLICY.wait(attempt, "GET", replayable=True, status=429, retry_after=1.0) is None


def test_no_retries() -> None:
    never = RetryPolicy(retries=0)
    assert never.wait(0, "GET", replayable=True, status=503) is None
    assert never.wait(0, "GET", replayable=True, exc=CONNECT[0]) is None


def test_backoff_capped() -> None:
    """The exponential backoff stops growing at ``backoff_max``."""
    policy = RetryPolicy(retries=50, backoff=1.0, backoff_max=8.0)
    for attempt in (3, 10, 40):
        wait = policy.wait(attempt, "GET", replayable=True, status=500)
        assert wait is not None and 4.0 <= wait <= 8.0


def test_nothing_failed() -> None:
    """Neither a status nor an exception: there is nothing to retry."""
    assert POLICY.wait(0, "GET", replayable=True) is None


def test_still_a_frozen_dataclass_with_the_old_import() -> None:
    from ocinb._http.transport import RetryPolicy as Reexported

    assert Reexported is RetryPolicy
    assert RetryPolicy() == RetryPolicy(4, 0.5, 20.0, 120.0, frozenset({429, 500, 502, 503, 504}))
    with pytest.raises(AttributeError):
        POLICY.retries = 9  # type: ignore[misc]
