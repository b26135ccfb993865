"""DataFrames built against the real registry match what it holds: rows, sizes, alignment, dtypes, provenance."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest
from _support import run
from pandas.api import types as ptypes

import ocinb
from ocinb import frames
from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.client import AsyncClient
from ocinb.models import Descriptor
from ocinb.ops.push import Layer
from ocinb.testing import LocalRegistry

T = TypeVar("T")

STARTED = pd.Timestamp.now(tz="UTC").floor("s")  # fetched_at may be written to the second
SBOM_TYPE = "application/spdx+json"
SIG_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"

pytestmark = pytest.mark.usefixtures("isolated_defaults")


DOCS = Path(__file__).resolve().parent.parent / "docs" / "columns.md"

# What each dtype named in docs/columns.md must be in pandas: written out here, independent of ocinb's tables.
SPEC_DTYPES = {
    "str": "str" if int(pd.__version__.split(".")[0]) >= 3 else "string",
    "int64": "int64",
    "Int64": "Int64",
    "float64": "float64",
    "bool": "bool",
    "datetime64[us, UTC]": "datetime64[us, UTC]",
}


@dataclass(frozen=True)
class DocColumn:
    """One row of a docs/columns.md table: the column, its documented dtype, and whether it needs ``resolve``."""

    name: str
    dtype: str
    resolve_only: bool


def documented_columns() -> dict[str, list[DocColumn]]:
    """The column tables of docs/columns.md by helper name (``tags``, ``platforms``, …), in documented order."""
    tables: dict[str, list[DocColumn]] = {}
    helper = None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        heading = re.fullmatch(r"## `ocinb\.(\w+)\(.*\)`", line.strip())
        if heading:
            helper = heading.group(1)
            continue
        if line.startswith("## "):
            helper = None
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if helper is None or len(cells) != 3 or cells[0] in ("column", "---"):
            continue
        names = re.findall(r"`(\w+)`", cells[0])
        assert names, f"docs/columns.md, ocinb.{helper}: no column name in {line!r}"
        dtype = cells[1].strip("`")
        tables.setdefault(helper, []).extend(DocColumn(n, dtype, "*(resolve=True)*" in cells[2]) for n in names)
    return tables


DOC = documented_columns()


def test_docs_name_a_spec_dtype_for_every_column() -> None:
    """docs/columns.md documents every helper, and each column's dtype is one of the dtypes pandas can be
    checked against (so a vague entry such as ``datetime`` fails here, not silently below)."""
    assert {"tags", "platforms", "layers", "history", "referrers", "catalog", "sizes"} <= set(DOC)
    for helper in DOC:
        assert callable(getattr(ocinb, helper)), f"docs/columns.md documents ocinb.{helper}, which does not exist"
    for helper, columns in DOC.items():
        names = [c.name for c in columns]
        assert len(names) == len(set(names)), f"{helper}: a column documented twice"
        for column in columns:
            assert column.dtype in SPEC_DTYPES, f"ocinb.{helper}: {column.name} has dtype {column.dtype!r}"
    text = DOCS.read_text(encoding="utf-8")
    assert "`datetime64[us, UTC]`" in text and "`Int64`" in text


def assert_documented(df: pd.DataFrame, helper: str, *, resolve: bool = True) -> None:
    """``df`` has exactly the columns docs/columns.md lists for ``ocinb.<helper>``, in order, with those dtypes."""
    expected = [c for c in DOC[helper] if resolve or not c.resolve_only]
    assert list(df.columns) == [c.name for c in expected], helper
    actual = {name: str(dtype) for name, dtype in df.dtypes.items()}
    wanted = {c.name: SPEC_DTYPES[c.dtype] for c in expected}
    assert actual == wanted, helper


def make_config(arch: str, steps: list[tuple[str, bool]], *, variant: str | None = None,
                extra: dict[str, Any] | None = None, layer_count: int | None = None) -> dict[str, Any]:
    """An image config whose history has ``steps`` (created_by, empty_layer), timestamps a day apart."""
    history = []
    for i, (created_by, empty) in enumerate(steps):
        entry: dict[str, Any] = {"created": f"2024-03-{i + 1:02d}T10:00:00Z", "created_by": created_by,
                                 "comment": f"step {i}", "author": "builder"}
        if empty:
            entry["empty_layer"] = True
        history.append(entry)
    count = layer_count if layer_count is not None else sum(1 for _, empty in steps if not empty)
    config: dict[str, Any] = {
        "created": "2024-03-09T12:30:00Z", "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/app"], "Labels": {"org.example": "yes"}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{i:064x}" for i in range(count)]},
        "history": history,
    }
    if variant:
        config["variant"] = variant
    config.update(extra or {})
    return config


STEPS = [("ADD base.tar /", False), ("ENV A=1", True), ("RUN make", False), ("CMD [\"/app\"]", True),
         ("COPY app /app", False)]


@dataclass
class Seeded:
    """What :func:`seed` pushed: the index tag and the digests and sizes to compare with."""

    repo: str
    index_digest: str
    index_size: int
    images: dict[str, Any]
    att_digest: str
    sbom_digest: str
    sig_digest: str
    base: bytes


async def seed(client: AsyncClient, name: str, *, hostile: str | None = None) -> Seeded:
    """Push two platform images sharing a base layer, a buildx-style attestation, an index over them at
    ``1.0``, an SBOM referring to the index and a signature referring to the SBOM."""
    repo = client.repo(name)
    base = b"B" * 3000
    text = hostile or "plain"
    images: dict[str, Any] = {}
    for arch, variant, sizes in (("amd64", None, (50_000, 700)), ("arm64", "v8", (20_000, 9_000))):
        layers = [base, bytes([len(arch)]) * sizes[0], arch.encode() * (sizes[1] // len(arch))]
        steps = [(s if i != 2 else f"RUN make {text}", e) for i, (s, e) in enumerate(STEPS)]
        extra = {"config": {"Env": [f"X={text}"], "Cmd": ["/app", text], "Entrypoint": ["/bin/sh", "-c"],
                            "User": "app", "WorkingDir": "/srv", "ExposedPorts": {"8080/tcp": {}},
                            "Labels": {"note": text}}}
        config = make_config(arch, steps, variant=variant, extra=extra)
        pushed = await repo.push_image(arch, config, layers, annotations={"note": text})
        m = await repo.manifests.get(pushed.digest)
        images[arch] = {"digest": pushed.digest, "manifest": m.as_manifest(), "size": m.size, "config": config}
    att_config = {"architecture": "unknown", "os": "unknown", "rootfs": {"type": "layers", "diff_ids": []}}
    att = await repo.push_image("att", att_config, [Layer(b'{"_type":"intoto"}', "application/vnd.in-toto+json")])
    att_desc = att.descriptor.model_copy(update={"annotations": {
        mt.ATTESTATION_ANNOTATION: mt.ATTESTATION_MANIFEST,
        mt.ATTESTATION_DIGEST_ANNOTATION: images["amd64"]["digest"]}})
    amd = (await repo.manifests.head(images["amd64"]["digest"]))
    arm = (await repo.manifests.head(images["arm64"]["digest"]))
    index = await repo.push_index("1.0", [amd, arm, att_desc],
                                  platforms=["linux/amd64", "linux/arm64/v8", "unknown/unknown"],
                                  annotations={"note": text})
    index_m = await repo.manifests.get("1.0")
    sbom = await repo.push_image(
        "sbom", mt.EMPTY_DATA, [Layer(b'{"spdxVersion":"SPDX-2.3"}', SBOM_TYPE)], config_media_type=mt.OCI_EMPTY,
        artifact_type=SBOM_TYPE, subject=index.descriptor,
        annotations={mt.ANNOTATION_CREATED: "2024-05-01T08:00:00+02:00", mt.ANNOTATION_TITLE: f"sbom {text}"})
    sig = await repo.push_image(
        "sig", mt.EMPTY_DATA, [Layer(b"signature", "application/octet-stream")], config_media_type=mt.OCI_EMPTY,
        artifact_type=SIG_TYPE, subject=sbom.descriptor, annotations={mt.ANNOTATION_TITLE: "signature"})
    return Seeded(name, index.digest, index_m.size, images, att.digest, sbom.digest, sig.digest, base)


@pytest.fixture(scope="module")
def seeded(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return run(registry, tmp_path_factory.mktemp("seed"), lambda c: seed(c, "frames/app"))


def assert_str(series: pd.Series) -> None:
    assert ptypes.is_string_dtype(series.dtype) and not ptypes.is_object_dtype(series.dtype), series.dtype


def assert_utc(series: pd.Series) -> None:
    assert ptypes.is_datetime64_any_dtype(series.dtype), series.dtype
    assert str(series.dt.tz) == "UTC"


def assert_attrs(df: pd.DataFrame, registry: LocalRegistry) -> None:
    assert df.attrs["registry"] == registry.address
    fetched = pd.Timestamp(df.attrs["fetched_at"])
    assert fetched.tzinfo is not None
    assert STARTED <= fetched <= pd.Timestamp.now(tz="UTC")  # fetched during this run, whatever its pace


def test_tags_frame(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    plain = run(registry, tmp_path, lambda c: c.tags(seeded.repo))
    assert_documented(plain, "tags", resolve=False)
    assert {"1.0", "amd64", "arm64", "att", "sbom", "sig"} <= set(plain["tag"])
    assert_str(plain["tag"])
    resolved = run(registry, tmp_path, lambda c: c.tags(seeded.repo, resolve=True))
    assert_documented(resolved, "tags")
    row = resolved.set_index("tag").loc["1.0"]
    assert row["digest"] == seeded.index_digest
    assert row["media_type"] == mt.OCI_INDEX
    assert row["size"] == seeded.index_size
    assert resolved.set_index("tag").loc["amd64", "digest"] == seeded.images["amd64"]["digest"]
    assert ptypes.is_integer_dtype(resolved["size"])
    for col in ("tag", "digest", "media_type"):
        assert_str(resolved[col])
    assert_attrs(resolved, registry)
    assert resolved.attrs["repository"] == seeded.repo


def test_platforms_frame(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    df = run(registry, tmp_path, lambda c: c.platforms(f"{seeded.repo}:1.0"))
    assert_documented(df, "platforms")
    assert len(df) == 3
    assert list(df["platform"][:2]) == ["linux/amd64", "linux/arm64/v8"]
    assert list(df["is_attestation"]) == [False, False, True]
    assert df["is_attestation"].dtype == bool
    att = df.iloc[2]
    assert att["digest"] == seeded.att_digest and att["attests"] == seeded.images["amd64"]["digest"]
    assert att["platform"] == "unknown/unknown" and pd.isna(att["image_size"])  # attestations are not pulled
    assert df["attests"][:2].isna().all()
    for arch, row in zip(("amd64", "arm64"), df.iloc[:2].itertuples(), strict=True):
        image = seeded.images[arch]
        assert row.digest == image["digest"]
        assert row.manifest_size == image["size"]
        assert row.image_size == image["manifest"].total_size
        assert row.layer_count == 3
        assert row.created == pd.Timestamp("2024-03-09T12:30:00Z")
    assert df.iloc[1]["variant"] == "v8" and pd.isna(df.iloc[0]["variant"])
    assert_utc(df["created"])
    for col in ("platform", "os", "architecture", "digest", "media_type", "attests"):
        assert_str(df[col])
    for col in ("manifest_size", "image_size", "layer_count"):
        assert ptypes.is_integer_dtype(df[col])
    assert_attrs(df, registry)
    assert df.attrs["digest"] == seeded.index_digest
    assert df.attrs["reference"] == f"{seeded.repo}:1.0"

    single = run(registry, tmp_path, lambda c: c.platforms(f"{seeded.repo}:arm64"))
    assert len(single) == 1 and single.iloc[0]["platform"] == "linux/arm64/v8"
    assert single.iloc[0]["image_size"] == seeded.images["arm64"]["manifest"].total_size


def test_layers_frame_aligns_history(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    df = run(registry, tmp_path, lambda c: c.layers(f"{seeded.repo}:1.0", "linux/arm64"))
    image = seeded.images["arm64"]["manifest"]
    assert_documented(df, "layers")
    assert list(df["position"]) == [0, 1, 2]
    assert list(df["digest"]) == [layer.digest for layer in image.layers]
    assert df["size"].sum() == image.total_size - image.config.size
    assert df["share"].sum() == pytest.approx(1.0)
    assert df.iloc[0]["size"] == 3000 and df.iloc[0]["share"] == pytest.approx(3000 / df["size"].sum())
    assert list(df["created_by"]) == ["ADD base.tar /", "RUN make plain", "COPY app /app"]
    assert list(df["created"]) == [pd.Timestamp(f"2024-03-0{d}T10:00:00Z") for d in (1, 3, 5)]
    assert df["size"].dtype == "int64" and df["position"].dtype == "int64"
    assert ptypes.is_float_dtype(df["share"])
    assert_utc(df["created"])
    assert_str(df["created_by"])
    assert df.attrs["digest"] == seeded.images["arm64"]["digest"]
    assert df.attrs["index_digest"] == seeded.index_digest
    assert df.attrs["platform"] == "linux/arm64/v8"

    default = run(registry, tmp_path, lambda c: c.layers(f"{seeded.repo}:1.0"))
    assert list(default["digest"]) == [layer.digest for layer in seeded.images["amd64"]["manifest"].layers]


def test_history_frame(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    df = run(registry, tmp_path, lambda c: c.history(f"{seeded.repo}@{seeded.images['amd64']['digest']}"))
    image = seeded.images["amd64"]["manifest"]
    assert_documented(df, "history")
    assert list(df["step"]) == list(range(5))
    assert list(df["empty_layer"]) == [False, True, False, True, False]
    assert df["empty_layer"].dtype == bool
    steps = df[~df["empty_layer"]]
    assert list(steps["layer_digest"]) == [layer.digest for layer in image.layers]
    assert list(steps["layer_size"]) == [layer.size for layer in image.layers]
    assert df[df["empty_layer"]]["layer_digest"].isna().all()
    assert df[df["empty_layer"]]["layer_size"].isna().all()
    assert ptypes.is_integer_dtype(df["layer_size"])
    assert list(df["comment"]) == [f"step {i}" for i in range(5)]
    assert (df["author"] == "builder").all()
    assert_utc(df["created"])
    assert df["created"].iloc[1] == pd.Timestamp("2024-03-02T10:00:00Z")
    for col in ("created_by", "comment", "author", "layer_digest"):
        assert_str(df[col])


def test_referrers_frame(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    df = run(registry, tmp_path, lambda c: c.referrers(f"{seeded.repo}:1.0"))
    assert_documented(df, "referrers")
    assert list(df["digest"]) == [seeded.sbom_digest, seeded.sig_digest]
    assert list(df["depth"]) == [1, 2]
    assert list(df["subject"]) == [seeded.index_digest, seeded.sbom_digest]
    assert list(df["artifact_type"]) == [SBOM_TYPE, SIG_TYPE]
    assert list(df["title"]) == ["sbom plain", "signature"]
    assert df["created"].iloc[0] == pd.Timestamp("2024-05-01T06:00:00Z")
    assert pd.isna(df["created"].iloc[1])
    assert_utc(df["created"])
    assert df["size"].dtype == "int64" and df["depth"].dtype == "int64"
    assert df.attrs["digest"] == seeded.index_digest

    direct = run(registry, tmp_path, lambda c: c.referrers(f"{seeded.repo}:1.0", recursive=False))
    assert list(direct["digest"]) == [seeded.sbom_digest]
    none = run(registry, tmp_path, lambda c: c.referrers(f"{seeded.repo}:arm64"))
    assert len(none) == 0
    assert_documented(none, "referrers")
    assert_utc(none["created"])
    assert none["size"].dtype == "int64"


def test_catalog_frame(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    df = run(registry, tmp_path, lambda c: c.catalog_frame())
    assert_documented(df, "catalog")
    assert seeded.repo in set(df["repository"])
    assert_str(df["repository"])
    assert_attrs(df, registry)


async def _two_tags(client: AsyncClient, name: str) -> dict[str, Any]:
    repo = client.repo(name)
    base = b"shared-base" * 1000
    out = {}
    for tag, own in (("a", b"a" * 5000), ("b", b"b" * 7000)):
        config = make_config("amd64", [("ADD base", False), ("RUN own", False)], extra={"author": tag})
        pushed = await repo.push_image(tag, config, [base, own])
        out[tag] = (await repo.manifests.get(pushed.digest)).as_manifest()
    await repo.push_manifest("a-again", await repo.manifests.get("a"))
    return out


def test_sizes_unique_and_shared(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    images = run(registry, tmp_path, lambda c: _two_tags(c, repo_name))
    df = run(registry, tmp_path, lambda c: c.sizes(repo_name, ["a", "b"]))
    assert_documented(df, "sizes")
    rows = df.set_index("tag")
    base = len(b"shared-base") * 1000
    for tag, own in (("a", 5000), ("b", 7000)):
        image = images[tag]
        assert rows.loc[tag, "size"] == image.total_size
        assert rows.loc[tag, "unique_size"] == image.config.size + own
        assert rows.loc[tag, "shared_size"] == base
        assert rows.loc[tag, "layer_count"] == 2
        assert rows.loc[tag, "platform"] == "linux/amd64"
    for col in ("size", "unique_size", "shared_size", "layer_count"):
        assert df[col].dtype == "int64"
    assert (df["shared_size"] == df["size"] - df["unique_size"]).all()

    every = run(registry, tmp_path, lambda c: c.sizes(repo_name))
    assert sorted(every["tag"]) == ["a", "a-again", "b"]
    again = every.set_index("tag")
    # Two tags of one manifest are one image: what only that image uses is still its own.
    assert again.loc["a", "unique_size"] == again.loc["a-again", "unique_size"] == images["a"].config.size + 5000
    assert again.loc["b", "unique_size"] == images["b"].config.size + 7000


def test_sizes_of_index_skip_attestations_and_fallback_tags(registry: LocalRegistry, seeded: Seeded,
                                                            tmp_path: Path) -> None:
    df = run(registry, tmp_path, lambda c: c.sizes(seeded.repo))
    assert not df["tag"].str.startswith("sha256-").any()
    index_rows = df[df["tag"] == "1.0"]
    assert list(index_rows["platform"]) == ["linux/amd64", "linux/arm64/v8"]
    assert list(index_rows["size"]) == [seeded.images[a]["manifest"].total_size for a in ("amd64", "arm64")]
    amd = df[df["tag"] == "1.0"].iloc[0]
    amd_image, arm_image = seeded.images["amd64"]["manifest"], seeded.images["arm64"]["manifest"]
    arm_blobs = {b.digest for b in [arm_image.config, *arm_image.layers]}
    own = sum(b.size for b in [amd_image.config, *amd_image.layers] if b.digest not in arm_blobs)
    assert own > 0 and amd["unique_size"] == own
    arm_only = df[df["digest"] == seeded.images["arm64"]["digest"]]
    assert len(arm_only) == 2


def test_module_helpers_use_default_client(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    ref = f"{registry.address}/{seeded.repo}:1.0"
    assert ocinb.default_client(registry.address) is ocinb.default_client(registry.address)
    assert len(ocinb.platforms(ref)) == 3
    assert len(ocinb.layers(ref, "linux/arm64/v8")) == 3
    assert len(ocinb.history(ref)) == 5
    assert len(ocinb.referrers(ref, recursive=False)) == 1
    assert "1.0" in set(ocinb.tags(f"{registry.address}/{seeded.repo}")["tag"])
    assert seeded.repo in set(ocinb.catalog(registry.address)["repository"])
    sizes = ocinb.sizes(f"{registry.address}/{seeded.repo}", ["1.0"], progress=False)
    assert len(sizes) == 2 and sizes.attrs["repository"] == seeded.repo
    assert ocinb.default_client(registry.address).cache.root == tmp_path / "cache"
    client = ocinb.default_client(registry.address)
    ocinb.configure(docker_config=False, environment=False, cache=ContentCache(tmp_path / "other"))
    assert ocinb.default_client(registry.address) is not client
    assert ocinb.default_client(registry.address).cache.root == tmp_path / "other"
    assert ocinb.default_client("docker.io").registry == "docker.io"


def test_empty_frames_keep_columns(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    async def push(client: AsyncClient) -> None:
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        await client.repo(repo_name).push_image("bare", config, [])

    run(registry, tmp_path, push)
    ref = f"{repo_name}:bare"
    layers = run(registry, tmp_path, lambda c: c.layers(ref))
    history = run(registry, tmp_path, lambda c: c.history(ref))
    sizes = run(registry, tmp_path, lambda c: c.sizes(repo_name, []))
    for df, helper in ((layers, "layers"), (history, "history"), (sizes, "sizes")):
        assert len(df) == 0
        assert_documented(df, helper)
    assert_utc(layers["created"])
    assert_utc(history["created"])
    assert layers["size"].dtype == "int64" and history["empty_layer"].dtype == bool


def test_rate_limit_in_attrs(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    async def frame(client: AsyncClient) -> pd.DataFrame:
        client.rate_limit.limit, client.rate_limit.remaining = 100, 42
        return await client.catalog_frame()

    df = run(registry, tmp_path, frame)
    assert df.attrs["rate_limit"]["limit"] == 100 and df.attrs["rate_limit"]["remaining"] == 42


def test_plots(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = run(registry, tmp_path, lambda c: c.layers(f"{seeded.repo}:1.0"))
    ax = frames.plot_layers(layers)
    assert len(ax.patches) == 3
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths[-1] == pytest.approx(layers["size"].max() / 2**20)
    sizes = run(registry, tmp_path, lambda c: c.sizes(seeded.repo, ["1.0", "amd64"]))
    ax2 = frames.plot_sizes(sizes)
    assert ax2.get_ylabel() == "MiB" and len(ax2.patches) == 4
    plt.close("all")


async def _many_tags(client: AsyncClient, name: str, count: int) -> None:
    repo = client.repo(name)
    base = await repo.blobs.upload(b"base" * 10_000)
    base_desc = Descriptor(media_type=mt.OCI_LAYER_GZIP, digest=base.digest, size=base.size)
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            config = make_config("amd64", [("ADD base", False), (f"RUN step {i}", False)])
            await repo.push_image(f"v{i}", config, [base_desc, f"layer {i}".encode() * 100])

    await asyncio.gather(*(one(i) for i in range(count)))


def test_sizes_over_100_tags_fetches_each_once(registry: LocalRegistry, repo_name: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """sizes() over 100 tags: one manifest GET per tag, one config GET per digest, and a warm cache fetches
    no config again. Times are printed, not bounded (the machine is shared)."""
    run(registry, tmp_path / "seed", lambda c: _many_tags(c, repo_name, 100))
    registry.reset_request_count()
    start = time.perf_counter()
    df = run(registry, tmp_path / "audit", lambda c: c.sizes(repo_name, progress=False))
    cold = time.perf_counter() - start
    assert len(df) == 100 and df["platform"].eq("linux/amd64").all()
    assert (df["shared_size"] == 40_000).all()
    assert registry.request_count("GET", "/manifests/") == 100
    assert registry.request_count("GET", "/blobs/") == 100
    registry.reset_request_count()
    start = time.perf_counter()
    warm_df = run(registry, tmp_path / "audit", lambda c: c.sizes(repo_name, progress=False))
    warm = time.perf_counter() - start
    assert warm_df.equals(df)
    assert registry.request_count("GET", "/blobs/") == 0
    shown = run(registry, tmp_path / "audit", lambda c: c.sizes(repo_name, ["v1", "v2"], progress=True))
    assert len(shown) == 2 and "sizes" in capsys.readouterr().err
    print(json.dumps({"sizes_100_tags_cold_s": round(cold, 3), "sizes_100_tags_warm_s": round(warm, 3)}))


def _tar_gz(files: dict[str, bytes], *, whiteouts: tuple[str, ...] = ()) -> bytes:
    """A gzipped tar layer written by Python's tarfile (an independent writer) with ``files`` and whiteouts."""
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in {**files, **{w: b"" for w in whiteouts}}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def test_inside_layer_frames_match_the_docs(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    """files, filesystem and waste have exactly the documented columns and dtypes, with rows and empty."""
    async def push(client: AsyncClient) -> None:
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        base = _tar_gz({"etc/a": b"a" * 100, "etc/b": b"b" * 10})
        top = _tar_gz({"etc/a": b"A" * 50}, whiteouts=("etc/.wh.b",))
        await client.repo(repo_name).push_image("two", config, [base, top])
        await client.repo(repo_name).push_image("bare", config, [])

    run(registry, tmp_path, push)
    for tag, rows in (("two", True), ("bare", False)):
        ref = f"{repo_name}:{tag}"
        for helper in ("files", "filesystem", "waste"):
            df = run(registry, tmp_path, lambda c, h=helper, r=ref: getattr(c, h)(r))  # type: ignore[misc]
            assert bool(len(df)) is rows, (helper, tag)
            assert_documented(df, helper)
