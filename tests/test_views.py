"""HTML views: inspect() and the models' _repr_html_ show what the registry holds, with every string escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from _support import run
from test_frames import Seeded, seed

import ocinb
from ocinb import views
from ocinb.client import AsyncClient
from ocinb.manifest import Manifest
from ocinb.models import ImageConfig
from ocinb.testing import LocalRegistry

ALLOWED_TAGS = {"div", "b", "i", "span", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "pre"}
BIG = "Z" * 1_000_000
HOSTILE = "<script>alert(1)</script> \"dq\" 'sq' & amp \x07bell " + BIG


pytestmark = pytest.mark.usefixtures("isolated_defaults")


@pytest.fixture(scope="module")
def hostile(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """The seeded image graph with the hostile string in annotations, labels, env, cmd, history and titles."""
    return run(registry, tmp_path_factory.mktemp("hostile"), lambda c: seed(c, "views/evil", hostile=HOSTILE))


@pytest.fixture(scope="module")
def plain(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return run(registry, tmp_path_factory.mktemp("plain"), lambda c: seed(c, "views/plain"))


def assert_safe(html: str) -> None:
    """No executable markup, no control characters, no megabyte strings."""
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;dq&quot;" in html and "&#x27;sq&#x27;" in html and "&amp; amp" in html
    assert "\x07" not in html and "bell" in html
    assert "Z" * 2001 not in html and "Z" * 1000 in html
    assert len(html) < 300_000, len(html)
    tags = re.findall(r"<[^>]*>", html)
    assert not [t for t in tags if re.search(r"\son\w+\s*=", t)]
    assert {re.match(r"</?(\w+)", t).group(1) for t in tags} <= ALLOWED_TAGS


def test_inspect_view_escapes_everything(registry: LocalRegistry, hostile: Seeded, tmp_path: Path) -> None:
    view = run(registry, tmp_path, lambda c: c.inspect(f"{hostile.repo}:1.0"))
    html = view._repr_html_()
    assert_safe(html)
    assert views.render(view) == html
    text = repr(view)
    assert "\x07" not in text and len(text) < 20_000 and hostile.index_digest in text


def test_models_repr_html_escape(registry: LocalRegistry, hostile: Seeded, tmp_path: Path) -> None:
    async def fetch(client: AsyncClient) -> tuple[Manifest, Manifest, ImageConfig]:
        repo = client.repo(hostile.repo)
        index = await repo.get_manifest("1.0")
        image = await repo.get_manifest(hostile.images["amd64"]["digest"])
        return index, image, await repo.config("1.0", "linux/amd64")

    index, image, config = run(registry, tmp_path, fetch)
    assert config.config is not None and config.config.labels == {"note": HOSTILE}
    descriptor = image.as_manifest().config.model_copy(update={"annotations": {"x": HOSTILE}})
    for obj in (index, image, index.as_index(), image.as_manifest(), config, descriptor):
        html = obj._repr_html_()
        assert_safe(html)
    sbom = run(registry, tmp_path, lambda c: c.repo(hostile.repo).get_manifest("sbom"))
    html = sbom._repr_html_()
    assert "<script" not in html.lower() and "&lt;script&gt;" in html and len(html) < 300_000


def test_inspect_shows_index_image_config_history_and_referrers(registry: LocalRegistry, plain: Seeded,
                                                                 tmp_path: Path) -> None:
    view = run(registry, tmp_path, lambda c: c.inspect(f"{plain.repo}:1.0", "linux/arm64"))
    arm = plain.images["arm64"]
    assert view.digest == plain.index_digest and view.image_digest == arm["digest"]
    assert view.platform == "linux/arm64/v8"
    assert view.platforms is not None and len(view.platforms) == 3
    assert view.layers is not None and list(view.layers["digest"]) == [d.digest for d in arm["manifest"].layers]
    assert view.history is not None and len(view.history) == 5
    assert view.config["entrypoint"] == ["/bin/sh", "-c"] and view.config["cmd"] == ["/app", "plain"]
    assert view.config["env"] == ["X=plain"] and view.config["labels"] == {"note": "plain"}
    assert view.config["user"] == "app" and view.config["working_dir"] == "/srv"
    assert view.config["exposed_ports"] == ["8080/tcp"]
    assert [n.descriptor.digest for n in view.referrers] == [plain.sbom_digest, plain.sig_digest]
    assert list(view.referrers_frame["depth"]) == [1, 2]

    html = view._repr_html_()
    for needle in (plain.index_digest, arm["digest"], "application/vnd.oci.image.index.v1+json", "linux/arm64/v8",
                   "unknown/unknown", "RUN make plain", "/bin/sh -c", "X=plain", "8080/tcp", "/srv",
                   plain.sbom_digest, plain.sig_digest, "Referrers (2)", "Platforms", "History"):
        assert needle in html, needle
    bars = re.findall(r"background:#4c8bf5;vertical-align:middle;width:([0-9.]+)%", html)
    assert len(bars) == 3 and max(float(b) for b in bars) == 100.0
    assert html.index(plain.sbom_digest) < html.index(plain.sig_digest)
    assert html.count("<ul") >= 2
    assert "<script" not in html.lower()

    text = repr(view)
    for needle in (plain.index_digest, "linux/arm64/v8", "[attestation]", "RUN make plain", "referrers:  2"):
        assert needle in text, needle


def test_inspect_single_image_and_module_function(registry: LocalRegistry, plain: Seeded) -> None:
    view = ocinb.inspect(f"{registry.address}/{plain.repo}:amd64")
    assert view.platforms is None and view.platform == "linux/amd64"
    assert view.digest == view.image_digest == plain.images["amd64"]["digest"]
    assert view.layers is not None and int(view.layers["size"].sum()) == sum(
        d.size for d in plain.images["amd64"]["manifest"].layers)
    assert view.referrers == []
    html = view._repr_html_()
    assert f"{registry.address}/{plain.repo}:amd64" in html and "Platforms" not in html


def test_inspect_artifact_without_platforms(registry: LocalRegistry, plain: Seeded, tmp_path: Path) -> None:
    view = run(registry, tmp_path, lambda c: c.inspect(f"{plain.repo}:sbom"))
    assert view.layers is not None and len(view.layers) == 1
    assert view.config == {} or view.config["platform"] is None
    assert [n.descriptor.digest for n in view.referrers] == [plain.sig_digest]
    assert plain.sig_digest in view._repr_html_()


def test_escape_helper_and_tables() -> None:
    assert views.esc('<a href="x">&</a>') == "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
    assert views.esc("a\x00b\x1bc\u202ed\x7f") == "abcd"
    assert views.esc("x" * 5000).endswith("…") and len(views.esc("x" * 5000)) == 2001
    df = pd.DataFrame({"<th>": ["<b>bold</b>", None], "size": [1_500_000, 2]})
    html = views.table(df, bars="size", sizes=["size"])
    assert "<b>" not in html and "&lt;th&gt;" in html and "1.5 MB" in html and "2 B" in html
    assert views.render(df).count("<tr>") == 3
    many = pd.DataFrame({"n": range(500)})
    assert "300 more rows" in views.table(many)
    assert views.human_size(None) == "" and views.human_size(999) == "999 B"
