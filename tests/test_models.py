"""Image-spec models: spec examples round trip, tolerance, platform matching and manifest parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from ocinb import media_types as mt
from ocinb.errors import ManifestError
from ocinb.models import (
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    Platform,
    RootFS,
    parse_config,
    parse_manifest,
    parse_timestamp,
)

SPEC_MANIFEST = """{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
    "size": 7023
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
      "size": 32654
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
      "size": 16724
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736",
      "size": 73109
    }
  ],
  "subject": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
    "size": 7682
  },
  "annotations": {
    "com.example.key1": "value1",
    "com.example.key2": "value2"
  }
}"""

SPEC_ARTIFACT = """{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example+type",
  "config": {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "size": 2,
    "data": "e30="
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.empty.v1+json",
      "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
      "size": 2
    }
  ],
  "annotations": {
    "oci.opencontainers.image.created": "2023-01-02T03:04:05Z",
    "com.example.data": "payload"
  }
}"""

SPEC_INDEX = """{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "size": 7143,
      "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
      "platform": {
        "architecture": "ppc64le",
        "os": "linux"
      }
    },
    {
      "mediaType": "application/vnd.oci.image.index.v1+json",
      "size": 7682,
      "digest": "sha256:601570aaff1b68a61eb9c85b8beca1644e698003e0cdb5bce960f193d265a8b7"
    }
  ],
  "annotations": {
    "com.example.key1": "value1",
    "com.example.key2": "value2"
  }
}"""

SPEC_CONFIG = """{
    "created": "2015-10-31T22:22:56.015925234Z",
    "author": "Alyssa P. Hacker <alyspdev@example.com>",
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "User": "alice",
        "ExposedPorts": {
            "8080/tcp": {}
        },
        "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "FOO=oci_is_a",
            "BAR=well_written_spec"
        ],
        "Entrypoint": [
            "/bin/my-app-binary"
        ],
        "Cmd": [
            "--foreground",
            "--config",
            "/etc/my-app.d/default.cfg"
        ],
        "Volumes": {
            "/var/job-result-data": {},
            "/var/log/my-app-logs": {}
        },
        "WorkingDir": "/home/alice",
        "Labels": {
            "com.example.project.git.url": "https://example.com/project.git",
            "com.example.project.git.commit": "45a939b2999782a3f005621a8d0f29aa387e1d6b"
        }
    },
    "rootfs": {
      "diff_ids": [
        "sha256:c6f988f4874bb0add23a778f753c65efe992244e148a1d2ec2a8b664fb66bbd1",
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
      ],
      "type": "layers"
    },
    "history": [
      {
        "created": "2015-10-31T22:22:54.690851953Z",
        "created_by": "/bin/sh -c #(nop) ADD file:a3bc1e842b69636f9df5256c49c5374fb4eef1e281fe3f282c65fb853ee171c5 in /"
      },
      {
        "created": "2015-10-31T22:22:55.613815829Z",
        "created_by": "/bin/sh -c #(nop) CMD [\\"sh\\"]",
        "empty_layer": true
      },
      {
        "created": "2015-10-31T22:22:56.329850019Z",
        "created_by": "/bin/sh -c apk add curl"
      }
    ]
}"""

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def desc(media_type: str = mt.OCI_MANIFEST, digest: str = A, size: int = 10, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


@pytest.mark.parametrize(("text", "cls"), [
    (SPEC_MANIFEST, ImageManifest), (SPEC_ARTIFACT, ImageManifest), (SPEC_INDEX, ImageIndex),
])
def test_spec_manifests_round_trip(text: str, cls: type) -> None:
    parsed = parse_manifest(text.encode())
    assert type(parsed) is cls
    assert json.loads(parsed.to_json_bytes()) == json.loads(text)
    assert parsed.to_dict() == json.loads(text)
    assert cls.model_validate_json(parsed.to_json_bytes()) == parsed


def test_spec_manifest_fields() -> None:
    m = parse_manifest(SPEC_MANIFEST.encode())
    assert isinstance(m, ImageManifest)
    assert m.schema_version == 2
    assert m.media_type == mt.OCI_MANIFEST
    assert m.config.media_type == mt.OCI_CONFIG
    assert m.config.digest.short == "sha256:b5b2b2c507a0"
    assert [layer.size for layer in m.layers] == [32654, 16724, 73109]
    assert m.total_size == 7023 + 32654 + 16724 + 73109
    assert m.effective_artifact_type == mt.OCI_CONFIG
    assert m.subject is not None and m.subject.size == 7682
    assert m.annotations == {"com.example.key1": "value1", "com.example.key2": "value2"}


def test_spec_artifact_fields() -> None:
    m = parse_manifest(SPEC_ARTIFACT.encode())
    assert isinstance(m, ImageManifest)
    assert m.effective_artifact_type == "application/vnd.example+type"
    assert m.config.digest == mt.EMPTY_DIGEST
    assert m.config.data == "e30="
    assert m.total_size == 4


def test_spec_config_round_trip() -> None:
    config = parse_config(SPEC_CONFIG.encode())
    assert json.loads(config.to_json_bytes()) == json.loads(SPEC_CONFIG)
    assert config.to_dict() == json.loads(SPEC_CONFIG)
    assert config.created == datetime(2015, 10, 31, 22, 22, 56, 15925, tzinfo=UTC)
    assert config.config is not None
    assert config.config.user == "alice"
    assert config.config.exposed_ports == {"8080/tcp": {}}
    assert config.config.entrypoint == ["/bin/my-app-binary"]
    assert config.config.cmd is not None and config.config.cmd[0] == "--foreground"
    assert config.config.working_dir == "/home/alice"
    assert config.config.labels is not None and len(config.config.labels) == 2
    assert config.rootfs is not None and config.rootfs.type == "layers"
    assert config.history is not None and config.history[1].empty_layer
    assert not config.history[0].empty_layer
    steps = config.layer_history()
    assert len(steps) == 2
    assert steps[0] is config.history[0]
    assert steps[1] is config.history[2]
    assert config.platform == Platform(os="linux", architecture="amd64")


def test_config_equality_ignores_raw_timestamp_text() -> None:
    parsed = parse_config(b'{"created": "2015-10-31T22:22:56.015925234Z", "os": "linux"}')
    built = ImageConfig(created=datetime(2015, 10, 31, 22, 22, 56, 15925, tzinfo=UTC), os="linux")
    assert parsed == built
    assert parsed != ImageConfig(os="linux")
    assert parsed.to_dict()["created"] == "2015-10-31T22:22:56.015925234Z"
    assert built.to_dict()["created"] == "2015-10-31T22:22:56.015925Z"
    assert parsed.model_copy().to_dict() == parsed.to_dict()


def test_changed_created_is_reemitted() -> None:
    config = ImageConfig.model_validate_json(SPEC_CONFIG)
    config.created = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert config.to_dict()["created"] == "2020-01-02T03:04:05Z"
    assert ImageConfig(created=datetime(2021, 1, 1, tzinfo=UTC)).to_dict() == {"created": "2021-01-01T00:00:00Z"}


def test_layer_history_alignment() -> None:
    h = [History(created_by="a"), History(created_by="env", empty_layer=True), History(created_by="b")]
    rootfs = RootFS(type="layers", diff_ids=[A, B, A])
    steps = ImageConfig(history=h, rootfs=rootfs).layer_history()
    assert [s.created_by if s else None for s in steps] == ["a", "b", None]
    long = ImageConfig(history=h, rootfs=RootFS(type="layers", diff_ids=[A])).layer_history()
    assert [s.created_by if s else None for s in long] == ["a"]
    assert ImageConfig(rootfs=rootfs).layer_history() == [None, None, None]
    assert [s.created_by for s in ImageConfig(history=h).layer_history() if s] == ["a", "b"]
    assert ImageConfig().layer_history() == []


@pytest.mark.parametrize(("value", "expected"), [
    ("2015-10-31T22:22:56.015925234Z", datetime(2015, 10, 31, 22, 22, 56, 15925, tzinfo=UTC)),
    ("2015-10-31T22:22:56Z", datetime(2015, 10, 31, 22, 22, 56, tzinfo=UTC)),
    ("2015-10-31T22:22:56", datetime(2015, 10, 31, 22, 22, 56, tzinfo=UTC)),
    ("2015-10-31 22:22:56", datetime(2015, 10, 31, 22, 22, 56, tzinfo=UTC)),
    ("2015-10-31T23:22:56+01:00", datetime(2015, 10, 31, 22, 22, 56, tzinfo=UTC)),
    ("2015-10-31T20:22:56-0200", datetime(2015, 10, 31, 22, 22, 56, tzinfo=UTC)),
    ("2015-10-31 22:22:56.5 +0000 UTC", datetime(2015, 10, 31, 22, 22, 56, 500000, tzinfo=UTC)),
    ("2015-10-31", datetime(2015, 10, 31, tzinfo=UTC)),
    ("2015-10-31t22:22:56z", datetime(2015, 10, 31, 22, 22, 56, tzinfo=UTC)),
    ("0001-01-01T00:00:00Z", None),
    ("", None),
    ("yesterday", None),
    ("2015-13-45T99:99:99Z", None),
    (None, None),
    (True, None),
    ([], None),
    ({"a": 1}, None),
    (0, datetime(1970, 1, 1, tzinfo=UTC)),
    (1e20, None),
    (datetime(2020, 1, 1), datetime(2020, 1, 1, tzinfo=UTC)),
    (datetime(2020, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), datetime(2020, 1, 1, tzinfo=UTC)),
])
def test_tolerant_timestamps(value: Any, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected
    config = ImageConfig.model_validate({"created": value, "history": [{"created": value}]})
    assert config.created == expected
    assert config.history is not None and config.history[0].created == expected
    if expected is not None:
        assert config.created is not None and config.created.tzinfo is not None


def test_unknown_fields_preserved_everywhere() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.example.future+json",
        "config": desc("application/x-unknown-config", B, 3, future={"nested": [1, 2]}),
        "layers": [desc("application/x-weird-layer", A, 0, note="x", platform={"os": "linux", "architecture": "x",
                                                                                  "newthing": True})],
        "extraTop": {"k": None, "n": 1.5},
    }
    m = parse_manifest(json.dumps(doc).encode())
    assert isinstance(m, ImageManifest)
    out = json.loads(m.to_json_bytes())
    assert out["extraTop"] == {"k": None, "n": 1.5}
    assert out["config"]["future"] == {"nested": [1, 2]}
    assert out["layers"][0]["note"] == "x"
    assert out["layers"][0]["platform"]["newthing"] is True
    assert out == doc


def test_aliases_and_names_both_accepted() -> None:
    by_alias = Descriptor.model_validate({"mediaType": "x", "digest": A, "size": 1, "artifactType": "t"})
    by_name = Descriptor(media_type="x", digest=A, size=1, artifact_type="t")
    assert by_alias == by_name
    assert by_name.to_dict() == {"mediaType": "x", "digest": A, "size": 1, "artifactType": "t"}
    p = Platform.model_validate({"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1",
                                 "os.features": ["win32k"]})
    assert p.os_version == "10.0.17763.1" and p.os_features == ["win32k"]
    assert p.to_dict() == {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1",
                           "os.features": ["win32k"]}
    cc = ContainerConfig(user="root", stop_signal="SIGTERM", env=["A=1"])
    assert cc.to_dict() == {"User": "root", "StopSignal": "SIGTERM", "Env": ["A=1"]}
    m = ImageManifest(media_type=mt.OCI_MANIFEST, config=Descriptor(media_type=mt.OCI_EMPTY, digest=mt.EMPTY_DIGEST,
                                                                     size=mt.EMPTY_SIZE), layers=[])
    assert json.loads(m.to_json_bytes()) == {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                                             "config": {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_DIGEST,
                                                        "size": 2}, "layers": []}


def test_models_are_mutable() -> None:
    d = Descriptor(media_type="x", digest=A, size=1)
    d.annotations = {"a": "b"}
    assert d.to_dict()["annotations"] == {"a": "b"}


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"digest": "sha256:xyz"}, "sha256 needs 64"),
    ({"digest": "nocolon"}, "algorithm:encoded"),
    ({"size": -1}, "greater than or equal to 0"),
    ({"size": "big"}, "size"),
    ({"media_type": None}, "media"),
])
def test_descriptor_validation(fields: dict[str, Any], fragment: str) -> None:
    base: dict[str, Any] = {"media_type": "x", "digest": A, "size": 1}
    base.update(fields)
    with pytest.raises(ValidationError) as info:
        Descriptor(**base)
    assert fragment in str(info.value)


def test_descriptor_digest_is_a_digest() -> None:
    d = Descriptor(media_type="x", digest="blake3:" + "f" * 64, size=0)
    assert d.digest.algorithm == "blake3"


@pytest.mark.parametrize(("platform", "annotations", "expected"), [
    ({"os": "unknown", "architecture": "unknown"}, {mt.ATTESTATION_ANNOTATION: mt.ATTESTATION_MANIFEST}, True),
    ({"os": "unknown", "architecture": "unknown"}, None, True),
    ({"os": "linux", "architecture": "amd64"}, {mt.ATTESTATION_ANNOTATION: mt.ATTESTATION_MANIFEST}, True),
    ({"os": "linux", "architecture": "amd64"}, {mt.ATTESTATION_ANNOTATION: "other"}, False),
    ({"os": "linux", "architecture": "amd64"}, None, False),
    (None, None, False),
])
def test_is_attestation(platform: dict[str, str] | None, annotations: dict[str, str] | None,
                        expected: bool) -> None:
    d = Descriptor.model_validate(desc(platform=platform, annotations=annotations))
    assert d.is_attestation is expected


@pytest.mark.parametrize(("text", "os", "arch", "variant", "os_version", "as_str"), [
    ("linux/amd64", "linux", "amd64", None, None, "linux/amd64"),
    ("linux/arm64/v8", "linux", "arm64", "v8", None, "linux/arm64/v8"),
    ("Linux/ARM/v7", "linux", "arm", "v7", None, "linux/arm/v7"),
    ("windows/amd64:10.0.17763", "windows", "amd64", None, "10.0.17763", "windows/amd64"),
    ("windows(10.0.17763)/amd64", "windows", "amd64", None, "10.0.17763", "windows/amd64"),
    (" linux/386 ", "linux", "386", None, None, "linux/386"),
])
def test_platform_parse(text: str, os: str, arch: str, variant: str | None, os_version: str | None,
                        as_str: str) -> None:
    p = Platform.parse(text)
    assert (p.os, p.architecture, p.variant, p.os_version) == (os, arch, variant, os_version)
    assert str(p) == as_str


@pytest.mark.parametrize("text", ["linux", "", "linux/", "/amd64", "a/b/c/d", "linux//v7"])
def test_platform_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="os/architecture"):
        Platform.parse(text)


@pytest.mark.parametrize(("have", "want", "expected"), [
    ("linux/amd64", "linux/amd64", True),
    ("linux/amd64", "linux/arm64", False),
    ("linux/amd64", "windows/amd64", False),
    ("linux/arm64", "linux/arm64/v8", True),
    ("linux/arm64/v8", "linux/arm64", True),
    ("linux/arm64/v8", "linux/arm64/v8", True),
    ("linux/arm64/v9", "linux/arm64/v8", False),
    ("linux/arm64/v9", "linux/arm64", True),
    ("linux/aarch64", "linux/arm64/v8", True),
    ("linux/arm64", "linux/aarch64", True),
    ("linux/x86_64", "linux/amd64", True),
    ("linux/amd64", "linux/x86_64", True),
    ("linux/arm/v7", "linux/arm", True),
    ("linux/arm/v6", "linux/arm", True),
    ("linux/arm", "linux/arm/v7", True),
    ("linux/arm", "linux/arm/v6", False),
    ("linux/arm/v6", "linux/arm/v7", False),
    ("linux/armhf", "linux/arm/v7", True),
    ("linux/amd64/v2", "linux/amd64", True),
    ("linux/amd64", "linux/amd64/v2", False),
    ("linux/arm64/8", "linux/arm64/v8", True),
    ("darwin/arm64", "macos/arm64", True),
    ("unknown/unknown", "linux/amd64", False),
    ("windows/amd64:10.0.17763.5206", "windows/amd64:10.0.17763", True),
    ("windows/amd64:10.0.20348.1", "windows/amd64:10.0.17763", False),
    ("windows/amd64", "windows/amd64:10.0.17763", True),
    ("windows/amd64:10.0.17763.1", "windows/amd64", True),
])
def test_platform_matches(have: str, want: str, expected: bool) -> None:
    assert Platform.parse(have).matches(want) is expected
    assert Platform.parse(have).matches(Platform.parse(want)) is expected


def test_platform_is_unknown() -> None:
    assert Platform(os="unknown", architecture="unknown").is_unknown
    assert Platform(os="linux", architecture="unknown").is_unknown
    assert not Platform(os="linux", architecture="amd64").is_unknown


def _index(*entries: tuple[str | None, str, dict[str, str] | None]) -> ImageIndex:
    manifests = []
    for i, (platform, mtype, notes) in enumerate(entries):
        p = None
        if platform is not None:
            p = Platform.parse(platform).to_dict()
        manifests.append(desc(mtype, "sha256:" + f"{i:x}" * 64, 100 + i, platform=p, annotations=notes))
    return ImageIndex.model_validate({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests})


ATT = {mt.ATTESTATION_ANNOTATION: mt.ATTESTATION_MANIFEST, mt.ATTESTATION_DIGEST_ANNOTATION: A}


def test_index_platform_descriptors_and_find() -> None:
    index = _index(
        ("unknown/unknown", mt.OCI_MANIFEST, ATT),
        ("linux/amd64", mt.OCI_MANIFEST, None),
        ("linux/arm/v6", mt.OCI_MANIFEST, None),
        ("linux/arm", mt.OCI_MANIFEST, None),
        ("linux/arm/v7", mt.OCI_MANIFEST, None),
        ("linux/arm64/v8", mt.OCI_MANIFEST, None),
        (None, mt.OCI_INDEX, None),
        ("unknown/unknown", mt.OCI_MANIFEST, ATT),
    )
    assert len(index.platform_descriptors()) == 5
    assert len(index.platform_descriptors(include_attestations=True)) == 7
    assert all(not d.is_attestation for d in index.platform_descriptors())

    def size(platform: str) -> int | None:
        found = index.find(platform)
        return found.size if found else None

    assert size("linux/amd64") == 101
    assert size("linux/x86_64") == 101
    assert size("linux/arm64") == 105
    assert size("linux/aarch64") == 105
    assert size("linux/arm64/v8") == 105
    assert size("linux/arm/v7") == 104
    assert size("linux/arm/v6") == 102
    assert size("linux/arm") == 103
    assert size("linux/riscv64") is None
    assert size("windows/amd64") is None
    assert size("unknown/unknown") is None
    assert index.find(Platform(os="linux", architecture="amd64")) is index.manifests[1]


def test_index_find_prefers_exact_variant() -> None:
    index = _index(("linux/arm64", mt.OCI_MANIFEST, None), ("linux/arm64/v8", mt.OCI_MANIFEST, None))
    found = index.find("linux/arm64/v8")
    assert found is not None and found.size == 101
    found = index.find("linux/arm64")
    assert found is not None and found.size == 100
    index = _index(("linux/arm64/v9", mt.OCI_MANIFEST, None), ("linux/arm64", mt.OCI_MANIFEST, None))
    found = index.find("linux/arm64")
    assert found is not None and found.size == 101


DOCKER_V2 = {
    "schemaVersion": 2,
    "mediaType": mt.DOCKER_MANIFEST,
    "config": desc(mt.DOCKER_CONFIG, A, 1469),
    "layers": [desc(mt.DOCKER_LAYER_GZIP, B, 2811478), desc(mt.DOCKER_FOREIGN_LAYER, A, 5, urls=["https://x/y"])],
}
DOCKER_LIST = {
    "schemaVersion": 2,
    "mediaType": mt.DOCKER_MANIFEST_LIST,
    "manifests": [desc(mt.DOCKER_MANIFEST, A, 528, platform={"architecture": "arm", "os": "linux", "variant": "v5"})],
}


@pytest.mark.parametrize(("doc", "header", "cls"), [
    (DOCKER_V2, None, ImageManifest),
    (DOCKER_LIST, None, ImageIndex),
    ({k: v for k, v in DOCKER_V2.items() if k != "mediaType"}, mt.DOCKER_MANIFEST, ImageManifest),
    ({k: v for k, v in DOCKER_LIST.items() if k != "mediaType"}, "application/vnd.docker.distribution.manifest"
     ".list.v2+json; charset=utf-8", ImageIndex),
    ({"manifests": []}, None, ImageIndex),
    ({"config": desc(), "layers": []}, None, ImageManifest),
    ({"config": desc(), "layers": []}, "application/octet-stream", ImageManifest),
    ({"mediaType": "application/vnd.example.unknown", "manifests": []}, mt.OCI_MANIFEST, ImageIndex),
    ({"mediaType": mt.OCI_INDEX, "manifests": []}, mt.OCI_MANIFEST, ImageIndex),
    ({"mediaType": "", "manifests": []}, mt.OCI_INDEX, ImageIndex),
])
def test_parse_manifest_kinds(doc: dict[str, Any], header: str | None, cls: type) -> None:
    parsed = parse_manifest(json.dumps(doc).encode(), header)
    assert type(parsed) is cls
    assert json.loads(parsed.to_json_bytes()) == {"schemaVersion": 2, **doc}


@pytest.mark.parametrize(("data", "header", "fragment"), [
    (b"", None, "not valid JSON"),
    (b"{", None, "not valid JSON"),
    (b"\xff\xfe\x00", None, "not valid JSON"),
    (b"[]", None, "must be a JSON object, not list"),
    (b'"manifest"', None, "must be a JSON object, not str"),
    (b"null", None, "must be a JSON object, not NoneType"),
    (b"{}", None, "neither an image manifest nor an index"),
    (b'{"mediaType": "application/x-what"}', None, "'application/x-what'"),
    (b'{"schemaVersion": 1, "name": "a", "fsLayers": []}', None, "schema 1"),
    (b'{"name": "a"}', mt.DOCKER_SCHEMA1_SIGNED, "schema 1"),
    (b'{"mediaType": "' + mt.DOCKER_SCHEMA1.encode() + b'"}', None, "schema 1"),
    (b'{"mediaType": "' + mt.OCI_MANIFEST.encode() + b'", "layers": []}', None, "config: Field required"),
    (b'{"mediaType": "' + mt.OCI_INDEX.encode() + b'"}', None, "manifests: Field required"),
    (b'{"config": {"mediaType": "x", "size": 1}, "layers": []}', None, "config.digest"),
    (b'{"config": {"mediaType": "x", "size": 1, "digest": "sha256:1"}, "layers": []}', None, "sha256 needs 64"),
    (b'{"manifests": [{"mediaType": "x", "digest": "' + A.encode() + b'", "size": -5}]}', None, "manifests.0.size"),
    (b'{"manifests": {}}', None, "invalid image index"),
    (b'{"manifests": [], "mediaType": 5}', None, "mediaType"),
    (b'{"manifests": [], "annotations": {"a": 1}}', None, "annotations.a"),
    (b'{"manifests": [' + b"[" * 100000 + b"]" * 100000 + b"]}", None, "nested too deeply"),
    (b"[" * 100000, None, "JSON"),
])
def test_parse_manifest_errors(data: bytes, header: str | None, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, header)
    assert fragment in str(info.value)


def test_parse_manifest_moderately_nested_extras() -> None:
    data = b'{"manifests": [], "x": ' + b"[" * 200 + b"]" * 200 + b"}"
    parsed = parse_manifest(data)
    assert isinstance(parsed, ImageIndex)


def test_parse_config_errors() -> None:
    with pytest.raises(ManifestError, match="image config is not valid JSON"):
        parse_config(b"nope")
    with pytest.raises(ManifestError, match="must be a JSON object"):
        parse_config(b"[1]")
    with pytest.raises(ManifestError, match="rootfs"):
        parse_config(b'{"rootfs": 5}')
    assert parse_config(b'{"created": "garbage", "architecture": "amd64"}').created is None


def test_docker_config_with_nulls_is_tolerated() -> None:
    config = parse_config(json.dumps({
        "architecture": "arm64", "variant": "v8", "os": "linux", "created": "0001-01-01T00:00:00Z",
        "config": {"Env": None, "Cmd": None, "Entrypoint": None, "Labels": None, "ArgsEscaped": True,
                   "Healthcheck": {"Test": ["CMD", "true"]}},
        "container_config": {"Hostname": ""}, "docker_version": "24.0.7",
        "rootfs": {"type": "layers", "diff_ids": []},
    }).encode())
    assert config.created is None
    assert config.platform == Platform(os="linux", architecture="arm64", variant="v8")
    out = config.to_dict()
    assert out["config"] == {"ArgsEscaped": True, "Healthcheck": {"Test": ["CMD", "true"]}}
    assert out["docker_version"] == "24.0.7"


def test_media_type_helpers() -> None:
    assert mt.MANIFEST_ACCEPT == (mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST)
    assert mt.is_index(mt.OCI_INDEX) and mt.is_index(mt.DOCKER_MANIFEST_LIST)
    assert mt.is_index("Application/VND.OCI.image.index.v1+json; charset=utf-8")
    assert not mt.is_index(mt.OCI_MANIFEST) and not mt.is_index(None)
    assert mt.is_manifest(mt.OCI_MANIFEST) and mt.is_manifest(mt.DOCKER_MANIFEST)
    assert not mt.is_manifest(mt.DOCKER_SCHEMA1) and not mt.is_manifest("")
    assert mt.strip_params(" Application/JSON ; charset=utf-8") == "application/json"
    assert mt.strip_params(None) == ""
    assert mt.short_name(mt.OCI_INDEX) == "oci-index"
    assert mt.short_name(mt.DOCKER_MANIFEST) == "docker-manifest"
    assert mt.short_name(mt.OCI_LAYER_GZIP) == "layer+gzip"
    assert mt.short_name("application/x-mine") == "application/x-mine"
    assert mt.OCI_LAYER_GZIP in mt.LAYER_TYPES and mt.DOCKER_LAYER_GZIP in mt.LAYER_TYPES
    assert mt.DOCKER_CONFIG in mt.CONFIG_TYPES and mt.OCI_CONFIG in mt.CONFIG_TYPES
    assert mt.MANIFEST_TYPES.isdisjoint(mt.INDEX_TYPES)
