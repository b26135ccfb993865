"""One list of secret query keys: the URLs errors keep and the lines httpx logs are masked alike.

Besides the list itself, signed URLs written as the storage vendors document them (S3 SigV4 presigned,
GCS V4 signed, Azure SAS, a token endpoint) must come out with none of their secret values.
"""

from __future__ import annotations

import logging

import pytest

import ocinb._http.transport  # noqa: F401  (installs the log filter as the client does)
from ocinb._http.redact import LOGGERS
from ocinb._redact import SECRET_QUERY_KEYS
from ocinb.errors import RegistryError, redact_url

VALUE = "Zq9SECRETvalue0x"

SIGNED_URLS = {
    "s3": ("https://bucket.s3.amazonaws.com/blob?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=AKIAEXAMPLEKEY%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z"
           "&X-Amz-Expires=900&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLETOKEN&X-Amz-SignedHeaders=host"
           "&X-Amz-Signature=8a1c0ffee5eedbeef",
           ["AKIAEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLETOKEN", "8a1c0ffee5eedbeef"]),
    "gcs": ("https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256"
            "&X-Goog-Credential=signer%40proj.iam.gserviceaccount.com%2F20240101%2Fauto%2Fstorage%2Fgoog4_request"
            "&X-Goog-Date=20240101T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host"
            "&X-Goog-Signature=0ddba11cafe",
            ["signer%40proj", "0ddba11cafe"]),
    "azure": ("https://acct.blob.core.windows.net/c/b?sv=2022-11-02&ss=b&srt=o&sp=r"
              "&se=2024-01-01T00:00:00Z&st=2023-12-31T00:00:00Z&spr=https&sig=AzSig%2Bc0ffee%3D",
              ["AzSig%2Bc0ffee"]),
    "token": ("https://auth.example/token?service=reg&scope=repository:a:pull&access_token=eyJhbGciOi.tok",
              ["eyJhbGciOi.tok"]),
}


def _logged(caplog: pytest.LogCaptureFixture, logger: str, text: str) -> str:
    """What a handler of ``logger`` receives for ``text`` (the filter sits on the logger itself)."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=logger):
        logging.getLogger(logger).debug('HTTP Request: GET %s "HTTP/1.1 307"', text)
    [record] = [r for r in caplog.records if r.name == logger]
    return record.getMessage()


@pytest.mark.parametrize("key", sorted(SECRET_QUERY_KEYS))
@pytest.mark.parametrize("spelling", [str.lower, str.upper, str.title])
def test_every_key_masked_by_both(key: str, spelling: object, caplog: pytest.LogCaptureFixture) -> None:
    name = spelling(key)  # type: ignore[operator]
    url = f"https://storage.example/blob?digest=sha256%3Aabc&{name}={VALUE}&n=1"
    for masked in (redact_url(url), str(RegistryError(500, "GET", url)), *(
            _logged(caplog, logger, url) for logger in LOGGERS)):
        assert VALUE not in masked, masked
        assert "digest=sha256" in masked and "n=1" in masked, masked  # what is no secret stays


@pytest.mark.parametrize("vendor", sorted(SIGNED_URLS))
def test_vendor_signed_urls(vendor: str, caplog: pytest.LogCaptureFixture) -> None:
    url, secrets = SIGNED_URLS[vendor]
    for masked in (redact_url(url), _logged(caplog, "httpx", url)):
        for secret in secrets:
            assert secret not in masked, (secret, masked)


def test_other_keys_and_userinfo() -> None:
    """A key not on the list keeps its value; userinfo is dropped from URLs."""
    assert redact_url("https://u:pw@r.example/v2/?last=x&n=5") == "https://r.example/v2/?last=x&n=5"
