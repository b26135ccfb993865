"""The ``ocinb`` command against a real registry seeded with the demo content: every subcommand, every
format, and the exit codes (0 ok, 1 registry/network/verification error, 2 bad usage)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _faultproxy import FaultProxy

import ocinb
from ocinb.cli import main
from ocinb.demo import APP_PLATFORMS, DemoInfo, seed
from ocinb.testing import LocalRegistry

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCINB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cli-cache"))
    for name in ("OCINB_REGISTRY", "OCINB_USERNAME", "OCINB_PASSWORD", "OCINB_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def demo(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> DemoInfo:
    """The `registry` fixture seeded with the demo content (idempotent across modules)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OCINB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cli-cache"))
        return seed(registry.address)


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    code = main(list(argv), stdin=io.StringIO(stdin) if stdin is not None else None)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_platforms_table(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "platforms", demo.reference("demo/app:2.0"))
    assert code == 0, err
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:3] == ["platform", "os", "architecture"]
    first_cols = [line.split()[0] for line in lines[1:]]
    assert first_cols == [*APP_PLATFORMS, "unknown/unknown", "unknown/unknown", "unknown/unknown"]
    # aligned: every row starts its digest column at the same offset
    offsets = {line.index("sha256:") for line in lines[1:]}
    assert len(offsets) == 1
    assert lines[0].index("digest") == offsets.pop()


def test_platforms_json_and_csv(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    ref = demo.reference("demo/app:2.0")
    code, out, _ = run(capsys, "--format", "json", "platforms", ref)
    assert code == 0
    records = json.loads(out)
    assert [r["platform"] for r in records if not r["is_attestation"]] == list(APP_PLATFORMS)
    assert records[0]["created"] == "2024-06-16T09:30:00Z"
    attests = {r["attests"] for r in records if r["is_attestation"]}
    assert attests == {r["digest"] for r in records if not r["is_attestation"]}
    # options after the subcommand work too
    code, out, _ = run(capsys, "platforms", ref, "-f", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 6
    assert rows[0]["platform"] == "linux/amd64"
    assert rows[0]["created"] == "2024-06-16T09:30:00Z"
    assert rows[3]["is_attestation"] == "True"


def test_tags_formats(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tags", demo.reference("demo/many-tags"), "--format", "json")
    assert code == 0
    tags = {r["tag"] for r in json.loads(out)}
    assert len(tags) == 300
    assert {"0.1.0", "0.10.9", "nightly-20240108"} <= tags
    code, out, _ = run(capsys, "--registry", demo.registry, "tags", "demo/app", "--resolve")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert {"1.0", "1.1", "2.0", "latest"} <= set(rows)
    assert rows["2.0"][1] == rows["latest"][1] == demo.digests["demo/app:2.0"]
    assert rows["1.0"][2] == "application/vnd.oci.image.index.v1+json"


def test_layers_and_history(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    ref = demo.reference("demo/app:1.0")
    code, out, _ = run(capsys, "layers", ref, "--platform", "linux/arm64", "-f", "json")
    assert code == 0
    layers = json.loads(out)
    assert [layer["position"] for layer in layers] == [0, 1, 2, 3]
    assert layers[0]["size"] > 2 * 1024 * 1024 > layers[3]["size"]
    assert "ADD file:" in layers[0]["created_by"]
    code, out, _ = run(capsys, "history", ref, "-f", "csv")
    assert code == 0
    steps = list(csv.DictReader(io.StringIO(out)))
    assert len(steps) == 11
    assert sum(s["empty_layer"] == "True" for s in steps) == 7
    assert steps[2]["created_by"] == "ENV PYTHON_VERSION=3.11.4"
    code, out, _ = run(capsys, "history", ref)
    assert code == 0
    assert "ENTRYPOINT" in out
    assert out.splitlines()[0].split()[:3] == ["step", "created", "created_by"]


def test_referrers(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    ref = demo.reference("demo/app:2.0")
    code, out, _ = run(capsys, "referrers", ref, "-f", "json")
    assert code == 0
    nodes = json.loads(out)
    assert sorted((n["depth"], n["artifact_type"]) for n in nodes) == [
        (1, "application/spdx+json"), (1, "application/vnd.dev.cosign.artifact.sig.v1+json"),
        (2, "application/vnd.dev.cosign.artifact.sig.v1+json")]
    assert {n["digest"] for n in nodes} == set(demo.referrers["demo/app:2.0"])
    code, out, _ = run(capsys, "referrers", ref, "--no-recursive", "-f", "json")
    assert code == 0
    assert {n["depth"] for n in json.loads(out)} == {1}


def test_catalog(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog", demo.registry)
    assert code == 0
    names = [line.strip() for line in out.splitlines()[1:]]
    assert {"demo/app", "demo/tools", "demo/many-tags"} <= set(names)
    code, out, _ = run(capsys, "catalog", f"http://{demo.registry}/", "-f", "csv")
    assert code == 0
    assert out.splitlines()[0] == "repository"


def test_sizes(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sizes", demo.reference("demo/app"), "--tags", "1.0", "1.1", "-f", "json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["tag"], r["platform"]) for r in rows] == [
        (t, p) for t in ("1.0", "1.1") for p in APP_PLATFORMS]
    for r in rows:
        assert r["size"] == r["unique_size"] + r["shared_size"]
        assert r["shared_size"] > r["unique_size"] > 0  # base, runtime and deps are shared by 1.0 and 1.1


def test_inspect_plain_text(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", demo.reference("demo/app:2.0"), "--platform", "linux/arm/v7")
    assert code == 0
    assert out.startswith(demo.reference("demo/app:2.0"))
    assert demo.digests["demo/app:2.0"] in out
    assert "linux/arm/v7" in out
    assert "<" not in out  # plain text, not HTML


def _sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _raw_manifest(registry: str, repository: str, ref: str) -> tuple[bytes, dict[str, object]]:
    """The manifest as the registry serves it, fetched with plain httpx (independent of ocinb)."""
    accept = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                        "application/vnd.docker.distribution.manifest.v2+json"])
    with httpx.Client(trust_env=False) as http:
        reply = http.get(f"http://{registry}/v2/{repository}/manifests/{ref}", headers={"Accept": accept})
    reply.raise_for_status()
    return reply.content, reply.json()


def test_blob_put_then_get(demo: DemoInfo, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                           repo_name: str) -> None:
    data = os.urandom(300_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    code, out, err = run(capsys, "blob", "put", f"{demo.registry}/{repo_name}", str(src))
    assert code == 0, err
    digest = out.strip()
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(trust_env=False) as http:  # the registry has it, byte for byte
        assert http.get(f"http://{demo.registry}/v2/{repo_name}/blobs/{digest}").content == data
    dest = tmp_path / "out" / "blob.bin"
    code, out, err = run(capsys, "blob", "get", f"{demo.registry}/{repo_name}@{digest}", "-o", str(dest))
    assert code == 0, err
    assert dest.read_bytes() == data
    assert out.split() == [digest, str(len(data)), str(dest)]
    wrong = "sha256:" + "0" * 64
    code, _, err = run(capsys, "blob", "put", f"{demo.registry}/{repo_name}@{wrong}", str(src))
    assert code == 1 and "DIGEST_INVALID" in one_error_line(err)  # the registry refuses the wrong digest


def test_blob_get_verifies_and_leaves_nothing(demo: DemoInfo, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              repo_name: str) -> None:
    """A FaultProxy flips a byte of the blob in transit: the real registry cannot corrupt content itself."""
    data = os.urandom(50_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    assert run(capsys, "blob", "put", f"{demo.registry}/{repo_name}", str(src))[0] == 0
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    proxy = FaultProxy(f"http://{demo.registry}")
    try:
        proxy.flip_byte(1000, match=lambda method, path: method == "GET" and "/blobs/" in path, times=20)
        dest = tmp_path / "out.bin"
        code, _, err = run(capsys, "blob", "get", f"127.0.0.1:{proxy.port}/{repo_name}@{digest}", "-o", str(dest))
    finally:
        proxy.stop()
    assert code == 1
    line = one_error_line(err)
    assert line.startswith("error: ") and "digest mismatch" in line
    assert list(tmp_path.iterdir()) == [src]


def test_pull_an_image_writes_verified_layers(demo: DemoInfo, capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    raw_index, index = _raw_manifest(demo.registry, "demo/app", "1.0")
    entry, = [m for m in index["manifests"]  # type: ignore[union-attr]
              if m["platform"]["architecture"] == "arm64" and m["platform"]["os"] == "linux"]
    raw_image, image = _raw_manifest(demo.registry, "demo/app", entry["digest"])
    out_dir = tmp_path / "app"
    code, out, err = run(capsys, "pull", demo.reference("demo/app:1.0"), "-p", "linux/arm64", "-o", str(out_dir),
                         "-f", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["kind"] for r in rows] == ["index", "manifest", "config"] + ["layer"] * len(image["layers"])
    assert rows[0]["digest"] == "sha256:" + hashlib.sha256(raw_index).hexdigest()
    assert rows[1]["digest"] == entry["digest"] == "sha256:" + hashlib.sha256(raw_image).hexdigest()
    assert rows[2]["digest"] == image["config"]["digest"]  # type: ignore[index]
    assert [r["digest"] for r in rows[3:]] == [layer["digest"] for layer in image["layers"]]  # type: ignore[union-attr]
    for row in rows[1:]:  # every file written hashes to its digest and has the descriptor's size
        path = Path(row["path"])
        assert path.parent == out_dir
        assert _sha256_file(path) == row["digest"] and path.stat().st_size == row["size"]
    assert rows[0]["path"] == ""
    assert Path(rows[1]["path"]).read_bytes() == raw_image
    code, out, err = run(capsys, "pull", f"{demo.registry}/demo/tools:3.19")  # no -o: nothing written
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["kind", "digest", "media_type", "size", "path"]
    assert [line.split()[0] for line in lines[1:3]] == ["manifest", "config"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app"]


def test_pull_image_layers_are_verified(demo: DemoInfo, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A FaultProxy corrupts layer bytes in transit (the real registry cannot): exit 1, no bad layer kept."""
    proxy = FaultProxy(f"http://{demo.registry}")
    try:
        proxy.flip_byte(100, match=lambda method, path: method == "GET" and "/blobs/" in path, times=1000)
        code, out, err = run(capsys, "pull", f"127.0.0.1:{proxy.port}/demo/tools:3.19", "-o", str(tmp_path / "t"))
    finally:
        proxy.stop()
    assert code == 1 and out == ""
    assert "mismatch" in one_error_line(err)
    kept = list((tmp_path / "t").iterdir()) if (tmp_path / "t").exists() else []
    assert all(_sha256_file(p) == p.name.replace("-", ":", 1) for p in kept)


def test_old_blob_forms_exit_2_naming_the_new_command(demo: DemoInfo, capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path, repo_name: str) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"a blob, not an image")
    assert run(capsys, "blob", "put", f"{demo.registry}/{repo_name}", str(src))[0] == 0
    digest = "sha256:" + hashlib.sha256(src.read_bytes()).hexdigest()
    blob_ref = f"{demo.registry}/{repo_name}@{digest}"
    code, out, err = run(capsys, "pull", blob_ref, "-o", str(tmp_path / "blob.bin"))
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert line.startswith("ocinb pull: error: ") and f"ocinb blob get {blob_ref} -o FILE" in line
    code, out, err = run(capsys, "pull", demo.reference("demo/app:1.0"), "-o", str(src))  # -o FILE: the old form
    assert code == 2 and out == ""
    assert "ocinb blob get" in one_error_line(err)
    code, out, err = run(capsys, "push", f"{demo.registry}/{repo_name}", str(src))
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert line.startswith("ocinb push: error: ") and f"ocinb blob put {demo.registry}/{repo_name}" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin"]
    assert src.read_bytes() == b"a blob, not an image"


def _skopeo_raw(address: str, ref: str) -> bytes:
    """The manifest at ``ref`` as skopeo (an independent client) reads it."""
    proc = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{address}/{ref}"],
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed (apt-get install skopeo)")
def test_copy_between_two_registries(demo: DemoInfo, registry2: LocalRegistry, capsys: pytest.CaptureFixture[str],
                                     repo_name: str) -> None:
    dst = f"{registry2.address}/{repo_name}"
    code, out, err = run(capsys, "copy", demo.reference("demo/app:2.0"), dst, "--referrers", "-f", "json")
    assert code == 0, err
    report, = json.loads(out)
    src_digest = demo.digests["demo/app:2.0"]
    assert report["digest"] == src_digest and report["destination"] == dst
    assert report["streamed"] > 0 and report["mounted"] == 0 and report["referrers"] == 3
    raw = _skopeo_raw(registry2.address, f"{repo_name}:2.0")  # no tag given: the source's
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == src_digest
    for entry in json.loads(raw)["manifests"]:
        child = _skopeo_raw(registry2.address, f"{repo_name}@{entry['digest']}")
        assert "sha256:" + hashlib.sha256(child).hexdigest() == entry["digest"]
    with httpx.Client(trust_env=False) as http:
        tags = http.get(f"http://{registry2.address}/v2/{repo_name}/tags/list").json()["tags"]
    assert "sha256-" + src_digest.removeprefix("sha256:") in tags  # 2.8 has no referrers API: the fallback tag
    code, out, err = run(capsys, "copy", demo.reference("demo/app:2.0"), f"{dst}:arm", "-p", "linux/arm64",
                         "-p", "linux/arm/v7")
    assert code == 0, err
    filtered = json.loads(_skopeo_raw(registry2.address, f"{repo_name}:arm"))
    assert sorted(m["platform"]["architecture"] for m in filtered["manifests"]) == ["arm", "arm64"]
    assert out.splitlines()[0].split()[:3] == ["source", "destination", "digest"]


def test_copy_within_one_registry_mounts(demo: DemoInfo, capsys: pytest.CaptureFixture[str], repo_name: str) -> None:
    code, out, err = run(capsys, "copy", demo.reference("demo/tools:3.19"), f"{demo.registry}/{repo_name}:v1",
                         "-f", "json")
    assert code == 0, err
    report, = json.loads(out)
    assert report["mounted"] > 0 and report["streamed"] == 0
    raw, _ = _raw_manifest(demo.registry, repo_name, "v1")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == report["digest"] == demo.digests["demo/tools:3.19"]


def test_registry_error_exit_1(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "platforms", demo.reference("demo/app:9.9"))
    assert code == 1
    assert out == ""
    line = one_error_line(err)
    assert line.startswith("error: MANIFEST_UNKNOWN: manifest unknown (GET http://")
    assert line.endswith("/v2/demo/app/manifests/9.9)")


def test_debug_shows_traceback(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--debug", "layers", demo.reference("demo/nope:1"))
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith(("error: NAME_UNKNOWN", "error: MANIFEST_UNKNOWN"))


def test_connection_refused_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run(capsys, "catalog", f"127.0.0.1:{port}")
    assert code == 1
    assert one_error_line(err).startswith("error: ")


@pytest.mark.parametrize(("argv", "command"), [
    (["platforms", "Bad Ref"], "platforms"),
    (["tags", "127.0.0.1:5000/demo/app:1.0"], "tags"),
    (["pull", "127.0.0.1:5000/demo/app", "-o", __file__], "pull"),
    (["push", "127.0.0.1:5000/demo/app", __file__], "push"),
    (["blob", "get", "127.0.0.1:5000/demo/app", "-o", "x"], "blob get"),
    (["blob", "put", "127.0.0.1:5000/demo/app:1.0", __file__], "blob put"),
    (["blob", "put", "127.0.0.1:5000/demo/app", "/nonexistent/file"], "blob put"),
    (["layers", "127.0.0.1:5000/demo/app:1.0", "--platform", "linux"], "layers"),
    (["copy", "127.0.0.1:5000/a:1", "127.0.0.1:5001/b", "-p", "linux"], "copy"),
    (["-u", "me", "--password-stdin", "copy", "127.0.0.1:5000/a:1", "127.0.0.1:5001/b"], "copy"),
    (["catalog", "not a host"], "catalog"),
    (["--password-stdin", "tags", "127.0.0.1:5000/demo/app"], "tags"),
])
def test_bad_usage_exit_2(argv: list[str], command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before any request: nothing listens on these ports, so a request would exit 1, not 2."""
    code, out, err = run(capsys, *argv, stdin="pw")
    assert code == 2
    assert out == ""
    assert one_error_line(err).startswith(f"ocinb {command}: error: ")


@pytest.mark.parametrize("argv", [[], ["tags"], ["frobnicate"], ["--format", "xml", "tags", "a/b"]])
def test_argparse_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "usage: ocinb" in err


def test_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for sub in ("tags", "platforms", "layers", "history", "referrers", "catalog", "inspect", "sizes", "pull",
                "push", "copy", "blob", "demo"):
        assert sub in out


def test_credentials_from_stdin_never_printed(basic_registry: LocalRegistry, basic_credentials: tuple[str, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    user, password = basic_credentials
    with ocinb.Client(basic_registry.address, username=user, password=password, docker_config=False) as client:
        client.repo("cli/stdin-login").blobs.upload(b"proof of login")
    code, out, err = run(capsys, "-u", user, "--password-stdin", "catalog", basic_registry.address,
                         "-f", "json", stdin=password + "\n")
    assert code == 0, err
    assert {"repository": "cli/stdin-login"} in json.loads(out)
    code, out, err = run(capsys, "-u", user, "--password-stdin", "catalog", basic_registry.address,
                         stdin="wrong-" + password)
    assert code == 1
    line = one_error_line(err)
    assert "UNAUTHORIZED" in line
    assert password not in out + err
    code, _, err = run(capsys, "catalog", basic_registry.address)
    assert code == 1
    assert "UNAUTHORIZED" in one_error_line(err)


def _subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCINB_") or k == "OCINB_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_python_m_ocinb_subprocess(demo: DemoInfo) -> None:
    ok = subprocess.run([sys.executable, "-m", "ocinb", "sizes", demo.reference("demo/app"), "--tags", "2.0"],
                        capture_output=True, text=True, env=_subprocess_env(), timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0].split() == ["tag", "platform", "digest", "size", "unique_size", "shared_size",
                                                 "layer_count"]
    assert len(ok.stdout.splitlines()) == 4
    bad = subprocess.run([sys.executable, "-m", "ocinb", "history", demo.reference("demo/app:0.0")],
                         capture_output=True, text=True, env=_subprocess_env(), timeout=60, check=False)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.startswith("error: MANIFEST_UNKNOWN") and bad.stderr.count("\n") == 1
    usage = subprocess.run([sys.executable, "-m", "ocinb", "platforms", "UPPER/Case"],
                           capture_output=True, text=True, env=_subprocess_env(), timeout=60, check=False)
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr


def test_demo_subcommand_prints_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo")
    assert code == 0, err
    assert "demo/app: 1.0, 1.1, 2.0, latest" in err
    assert "300 tags" in err
    assert "linux/arm64/v8" in out and "unique_size" in out


@pytest.fixture
def kept_registry() -> Iterator[dict[str, str]]:
    """Run `ocinb demo --keep` and kill the registry it leaves behind, by its printed PID."""
    proc = subprocess.run([sys.executable, "-m", "ocinb", "demo", "--keep"], capture_output=True, text=True,
                          env=_subprocess_env(), timeout=120, check=False)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    try:
        assert proc.returncode == 0, proc.stderr
        yield values
    finally:
        if "OCINB_REGISTRY_PID" in values:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(values["OCINB_REGISTRY_PID"]), signal.SIGTERM)
        if "OCINB_REGISTRY_DIR" in values:
            shutil.rmtree(values["OCINB_REGISTRY_DIR"], ignore_errors=True)


def test_demo_keep_leaves_registry_running(kept_registry: dict[str, str]) -> None:
    assert kept_registry["OCINB_IMAGE"] == "demo/app:2.0"
    assert Path(kept_registry["OCINB_REGISTRY_DIR"], "storage").is_dir()
    address = kept_registry["OCINB_REGISTRY"]
    with httpx.Client(trust_env=False) as http:
        reply = http.get(f"http://{address}/v2/demo/app/tags/list")
    assert reply.status_code == 200
    assert set(reply.json()["tags"]) >= {"1.0", "1.1", "2.0", "latest"}


def test_unknown_platform_is_one_clear_line(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "layers", demo.reference(), "-p", "windows/s390x")
    assert code == 1
    line = one_error_line(err)
    assert line.startswith("error: no manifest for platform windows/s390x") and "linux/arm64/v8" in line
    code, _, err = run(capsys, "layers", f"{demo.registry}/demo/tools:3.19", "-p", "linux/arm64")
    assert code == 1 and "offered: linux/amd64" in one_error_line(err)


def test_inspect_refuses_table_formats_it_cannot_write(demo: DemoInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "inspect", demo.reference(), "-f", "json")
    assert code == 2 and out == "" and "inspect prints a text summary" in err
