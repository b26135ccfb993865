"""The test suite's FakeRegistry in its own process (so its GIL is not the client's), seeded with tags.

Usage: ``python bench/_fakeserver.py REPO NTAGS PAGE_SIZE``. Prints ``READY <address>``, then reads
commands on stdin: ``count`` (prints ``COUNT <tags/list GETs>``), ``reset``, ``quit``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _fakeregistry import FakeRegistry


def main() -> None:
    repo, ntags, page = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    server = FakeRegistry(tag_page_size=page)
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    cdigest = server.put_blob(repo, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": len(config)},
        "layers": [],
    }
    raw = json.dumps(manifest).encode()
    for i in range(ntags):
        server.put_manifest(repo, f"v{i:05d}", raw)
    print(f"READY {server.address}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "count":
            print(f"COUNT {server.count('GET', f'/v2/{repo}/tags/list')} {server.count()}", flush=True)
        elif cmd == "reset":
            server.reset_log()
            print("OK", flush=True)
        elif cmd == "quit":
            break
    server.stop()


if __name__ == "__main__":
    main()
