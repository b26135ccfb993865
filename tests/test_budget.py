"""The rate-limit budget: the :class:`Budget` alone (a fake clock, no network), then a bulk job against the fake
registry sending Docker Hub's ``ratelimit-*`` headers, whose own counter says what was spent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest
from _fakeregistry import OCI_MANIFEST, FakeRegistry

import ocinb
from ocinb import AsyncClient, ContentCache, RateBudget, RateBudgetExceededError
from ocinb._http.budget import Budget, bulk, counts_against_quota

MANIFEST_URL = "https://registry-1.docker.io/v2/library/node/manifests/22"
HUB = {"ratelimit-limit": "100;w=21600"}


def hub(remaining: int) -> dict[str, str]:
    return {**HUB, "ratelimit-remaining": f"{remaining};w=21600"}


class FakeTime:
    """A clock that moves only when the budget sleeps, so pacing is checked without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_policy_rejects_nonsense() -> None:
    for bad in (0, -1, float("nan"), float("inf"), "3"):
        with pytest.raises(ValueError, match="requests_per_second"):
            RateBudget(requests_per_second=bad)  # type: ignore[arg-type]
    for bad_reserve in (-1, 2.5):
        with pytest.raises(ValueError, match="reserve"):
            RateBudget(reserve=bad_reserve)  # type: ignore[arg-type]


def test_only_manifest_gets_count() -> None:
    assert counts_against_quota("GET", MANIFEST_URL)
    assert not counts_against_quota("HEAD", MANIFEST_URL)
    assert not counts_against_quota("GET", "https://h/v2/library/node/blobs/sha256:" + "0" * 64)
    assert not counts_against_quota("GET", "https://h/v2/library/node/tags/list")


@pytest.mark.asyncio
async def test_requests_per_second_spaces_requests() -> None:
    t = FakeTime()
    budget = Budget(RateBudget(requests_per_second=4), "h", clock=t.clock, sleep=t.sleep)
    for _ in range(5):
        await budget.before("HEAD", MANIFEST_URL)
    assert t.sleeps == [0.25, 0.25, 0.25, 0.25]  # the first goes at once, then one every 1/4 s


@pytest.mark.asyncio
async def test_reserve_stops_bulk_work_not_single_calls() -> None:
    budget = Budget(RateBudget(reserve=10), "registry-1.docker.io")
    with bulk():
        counted = await budget.before("GET", MANIFEST_URL)  # quota unknown: it goes alone
        budget.after(counted, 200, hub(12))
        for _ in range(2):  # 12 → 11 → 10
            budget.after(await budget.before("GET", MANIFEST_URL), 200, hub(budget.remaining or 0))
        assert budget.remaining == 10
        assert await budget.before("HEAD", MANIFEST_URL) is False  # HEADs spend nothing, so go on
        with pytest.raises(RateBudgetExceededError) as info:
            await budget.before("GET", MANIFEST_URL)
    assert info.value.remaining == 10 and info.value.reserve == 10
    assert "10 are kept in reserve" in str(info.value)
    assert await budget.before("GET", MANIFEST_URL) is True  # an interactive call may spend the reserve


@pytest.mark.asyncio
async def test_first_counted_request_goes_alone() -> None:
    budget = Budget(RateBudget(reserve=1), "h")
    with bulk():
        first = await budget.before("GET", MANIFEST_URL)
        second = asyncio.ensure_future(budget.before("GET", MANIFEST_URL))
        await asyncio.sleep(0)
        assert not second.done()  # waits to learn the quota
        budget.after(first, 200, hub(2))  # 2 left: the second may go (1 stays)
        assert await second is True
        assert budget.remaining == 1
        budget.after(True, 200, hub(1))
        with pytest.raises(RateBudgetExceededError):
            await budget.before("GET", MANIFEST_URL)


@pytest.mark.asyncio
async def test_out_of_order_replies_never_raise_the_estimate() -> None:
    budget = Budget(RateBudget(reserve=0), "h")
    with bulk():
        budget.after(await budget.before("GET", MANIFEST_URL), 200, hub(10))
        a = await budget.before("GET", MANIFEST_URL)
        b = await budget.before("GET", MANIFEST_URL)
        assert budget.remaining == 8
        budget.after(b, 200, hub(8))  # b was counted second but answers first
        budget.after(a, 200, hub(9))  # a's stale reply must not give one back
        assert budget.remaining == 8


@pytest.mark.asyncio
async def test_wait_probes_for_free_until_the_window_reopens() -> None:
    t = FakeTime()
    budget = Budget(RateBudget(reserve=5, wait=True), "h", clock=t.clock, sleep=t.sleep)
    probes = iter([5, 5, 7])

    async def probe() -> tuple[int, dict[str, str]]:
        return 200, hub(next(probes))

    with bulk():
        budget.after(await budget.before("GET", MANIFEST_URL), 200, hub(5))
        assert await budget.before("GET", MANIFEST_URL, probe) is True
    assert t.sleeps == [216.0, 216.0, 216.0]  # one request's share of 100 per 21600 s, three probes
    assert budget.remaining == 6


@pytest.mark.asyncio
async def test_registry_without_rate_limit_is_not_gated() -> None:
    budget = Budget(RateBudget(reserve=100), "h")
    with bulk():
        budget.after(await budget.before("GET", MANIFEST_URL), 200, {})
        for _ in range(3):
            budget.after(await budget.before("GET", MANIFEST_URL), 200, {})


def _image(fake: FakeRegistry, repo: str, tag: str) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"tag": tag}}}).encode()
    cdigest = fake.put_blob(repo, config)
    layer = f"layer of {tag}".encode()
    ldigest = fake.put_blob(repo, layer)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest,
                           "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ldigest,
                            "size": len(layer)}]}
    fake.put_manifest(repo, tag, manifest)


@pytest.mark.asyncio
async def test_bulk_job_never_spends_the_reserve(tmp_path: Path) -> None:
    """The real registry sends no rate-limit headers, so the fake plays Docker Hub: GETs of manifests count,
    HEADs are free. Its own counter (``fake.ratelimit``) is the independent measure of what was spent."""
    with FakeRegistry(ratelimit=(40, 30)) as fake:
        for i in range(30):
            _image(fake, "org/app", f"v{i}")
        async with AsyncClient(fake.address, rate_budget=RateBudget(reserve=10), docker_config=False,
                               environment=False, cache=ContentCache(tmp_path, enabled=False)) as client:
            tags = await client.tags("org/app", resolve=True)  # 30 HEADs
            assert fake.ratelimit == (40, 30)
            assert tags.attrs["rate_limit"]["remaining"] == 30
            with pytest.raises(RateBudgetExceededError) as info:
                await client.sizes("org/app")  # 30 manifest GETs wanted, 20 allowed
            assert fake.ratelimit[1] == 10  # spent down to the reserve, never below
            done = [d for d in info.value.done if d is not None]
            assert 0 < len(done) <= 20
            assert fake.count("GET", "/v2/org/app/manifests/") == 20
            again = await client.tags("org/app", resolve=True)  # HEADs still allowed at the reserve
            assert len(again) == 30 and again.attrs["rate_limit"]["remaining"] == 10
            await client.layers("org/app:v0")  # one interactive call may spend the reserve
            assert fake.ratelimit[1] == 9


def test_crawl_stops_at_the_reserve_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crawl stopped by the budget keeps what it finished (fake registry: Docker Hub's headers, see above)."""
    monkeypatch.setenv("OCINB_CACHE", "0")
    with FakeRegistry(ratelimit=(100, 25)) as fake:
        for i in range(30):
            _image(fake, "org/app", f"v{i}")
        ocinb.configure(rate_budget=RateBudget(reserve=5), docker_config=False, environment=False)
        try:
            with pytest.raises(RateBudgetExceededError) as info:
                ocinb.crawl([f"{fake.address}/org/app"], tmp_path, ["tags", "platforms"], progress=False)
            assert fake.ratelimit[1] == 5
            report = info.value.done
            assert isinstance(report, ocinb.CrawlReport) and report.stopped
            first = pd.read_parquet(tmp_path / "platforms")
            assert len(first) == report.rows["platforms"] == 20  # 25 manifest GETs, 5 kept back
            fake.ratelimit = (100, 100)  # the window reopens
            again = ocinb.crawl([f"{fake.address}/org/app"], tmp_path, ["tags", "platforms"], progress=False)
            assert again.skipped >= len(first)
            platforms = pd.read_parquet(tmp_path / "platforms")
            assert sorted(platforms["reference"]) == sorted(f"{fake.address}/org/app:v{i}" for i in range(30))
        finally:
            ocinb.configure()


def test_progress_bar_shows_the_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar's postfix carries the quota the registry reports (fake registry as Docker Hub, see above)."""
    import tqdm.auto

    shown: list[dict[str, object]] = []

    class Bar:
        def __init__(self, **kwargs: object) -> None:
            pass

        def set_postfix(self, refresh: bool = True, **values: object) -> None:
            shown.append(values)

        def update(self, n: int) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    with FakeRegistry(ratelimit=(100, 60)) as fake:
        for i in range(25):
            _image(fake, "org/app", f"v{i}")
        with ocinb.Client(fake.address, docker_config=False, environment=False,
                          cache=ContentCache(tmp_path, enabled=False)) as client:
            client.sizes("org/app", progress=True)
    assert shown and shown[-1] == {"quota": 35} == {"quota": fake.ratelimit[1]}
