"""end-3 (GET/HEAD), end-7 (PUT) and end-9 (DELETE) of manifests."""

from __future__ import annotations

from dataclasses import dataclass

from .. import media_types as mt
from .._http.transport import join_location
from ..digest import Digest, is_digest, verify_bytes
from ..errors import (
    DigestMismatchError,
    InvalidDigestError,
    ManifestError,
    NotFoundError,
)
from ..manifest import Manifest, manifest_media_type, schema1_payload
from ..models import Descriptor, ImageIndex, ImageManifest
from ..reference import fallback_tag, validate_tag_or_digest
from ._base import Endpoint

ACCEPT = ", ".join(mt.MANIFEST_ACCEPT)


@dataclass(frozen=True)
class PutResult:
    """What a manifest PUT returned: the pushed descriptor, its ``Location``, and ``OCI-Subject`` if any."""

    descriptor: Descriptor
    location: str | None
    subject: str | None

    @property
    def digest(self) -> str:
        return self.descriptor.digest


class Manifests(Endpoint):
    """``repo.manifests``: get, head, put and delete manifests by tag or digest."""

    async def get(self, ref: str, *, accept: str = ACCEPT) -> Manifest:
        """end-3 GET. Keeps the raw bytes; verifies the digest (against ``ref`` when it is a digest,
        and against ``Docker-Content-Digest`` when present).

        A signed Docker schema 1 manifest is verified as its format defines its digest: over the JWS payload,
        the document without its signatures (distribution re-signs it on every GET, so the body changes).
        """
        ref = validate_tag_or_digest(ref)
        reply = await self.ctx.core.request(
            "GET", self.ctx.path(f"manifests/{ref}"), scopes=self.ctx.pull_scopes, headers={"Accept": accept},
            max_body=self.ctx.max_manifest_size,
        )
        data = reply.content
        media_type = manifest_media_type(data, reply.headers.get("content-type"))
        expected = ref if is_digest(ref) else reply.headers.get("docker-content-digest")
        if expected:
            try:
                actual = Digest.of(data, Digest.parse(expected).algorithm)
            except InvalidDigestError as exc:  # an algorithm we cannot hash, or a bad header
                if is_digest(ref):
                    raise ManifestError(f"cannot verify manifest {ref}: {exc}") from None
                actual = Digest.of(data)
                expected = None
            what = f"manifest {self.ctx.name}@{ref}"
            if expected and actual != expected and media_type == mt.DOCKER_SCHEMA1_SIGNED:
                try:
                    actual = Digest.of(schema1_payload(data), actual.algorithm)
                except ManifestError as exc:  # no payload to check: the bytes stay unverified
                    raise DigestMismatchError(expected, str(actual), f"{what} ({exc})") from None
                what += " (signed schema 1: the JWS payload)"
            if expected and actual != expected:
                raise DigestMismatchError(expected, str(actual), what)
            digest = actual
        else:
            digest = Digest.of(data)
        return Manifest.from_bytes(data, media_type, digest=digest, repository=self.ctx.name, reference=ref)

    async def head(self, ref: str, *, accept: str = ACCEPT) -> Descriptor:
        """end-3 HEAD: the descriptor (media type, digest, size) without the body.

        When the registry sends no ``Docker-Content-Digest``, falls back to a GET to compute it.
        """
        ref = validate_tag_or_digest(ref)
        reply = await self.ctx.core.request(
            "HEAD", self.ctx.path(f"manifests/{ref}"), scopes=self.ctx.pull_scopes, headers={"Accept": accept}
        )
        digest = reply.headers.get("docker-content-digest")
        digest = digest if digest and is_digest(digest) else None  # a malformed header is no answer
        length = reply.headers.get("content-length")
        media_type = mt.strip_params(reply.headers.get("content-type", ""))
        if is_digest(ref) and digest and digest != ref:
            raise DigestMismatchError(ref, digest, f"manifest {self.ctx.name}@{ref} (HEAD)")
        if not digest or not (length and length.isdigit()) or not media_type:
            m = await self.get(ref, accept=accept)
            return m.descriptor()
        return Descriptor(media_type=media_type, digest=str(Digest.parse(digest)), size=int(length))

    async def exists(self, ref: str) -> bool:
        """Whether the manifest exists (a HEAD; 404 → False)."""
        ref = validate_tag_or_digest(ref)
        reply = await self.ctx.core.request(
            "HEAD", self.ctx.path(f"manifests/{ref}"), scopes=self.ctx.pull_scopes,
            headers={"Accept": ACCEPT}, expect=(200, 404),
        )
        return reply.status == 200

    async def put(self, ref: str, manifest: Manifest | ImageManifest | ImageIndex | bytes,
                  media_type: str | None = None, *, update_referrers: bool = True) -> PutResult:
        """end-7 PUT the exact bytes with ``Content-Type`` = the manifest's media type; 201 expected.

        ``ref`` is a tag or the manifest's digest. A returned ``Docker-Content-Digest`` must match. A manifest
        with a ``subject`` answered without ``OCI-Subject`` is added to the subject's referrers tag, as the spec
        says a client MUST (``update_referrers=False`` leaves the tag alone).
        """
        m = Manifest.of(manifest, media_type)
        result = await self._put(validate_tag_or_digest(ref), m)
        if update_referrers and m.subject and result.subject is None:
            await self._add_to_referrers_tag(m.subject, m.referrer_descriptor())
        return result

    async def _put(self, ref: str, m: Manifest) -> PutResult:
        data, media_type, digest = m.data, m.media_type, m.digest
        if len(data) > self.ctx.max_manifest_size:
            raise ManifestError(
                f"manifest is {len(data)} bytes, over the {self.ctx.max_manifest_size}-byte limit registries accept"
            )
        if is_digest(ref):
            verify_bytes(data, ref, what=f"manifest pushed as {ref}")
        reply = await self.ctx.core.request(
            "PUT", self.ctx.path(f"manifests/{ref}"), scopes=self.ctx.push_scopes,
            headers={"Content-Type": media_type}, body=data, expect=(201, 200, 202),
        )
        returned = reply.headers.get("docker-content-digest")
        same_algorithm = bool(returned) and is_digest(returned) and Digest.parse(returned).algorithm == digest.algorithm
        if same_algorithm and returned != digest:
            raise DigestMismatchError(str(digest), returned, f"manifest {self.ctx.name}:{ref} (registry's answer)")
        location = reply.headers.get("location")
        return PutResult(
            Descriptor(media_type=media_type, digest=str(digest), size=len(data)),
            join_location(reply.url, location, status=reply.status, method="PUT") if location else None,
            reply.headers.get("oci-subject"),
        )

    async def delete(self, ref: str, *, update_referrers: bool = True) -> None:
        """end-9 DELETE by digest (tags: many registries, distribution 2.8 included, answer 400).

        On a registry without the referrers API, a deleted manifest that has a ``subject`` is also removed
        from the subject's referrers tag (``update_referrers=False`` leaves the tag alone).
        """
        ref = validate_tag_or_digest(ref)
        subject = None
        if update_referrers and is_digest(ref) and self.ctx.state.referrers_api is not True:
            try:
                subject = (await self.get(ref)).subject
            except NotFoundError:
                subject = None
        await self.ctx.delete(f"manifests/{ref}", "this registry cannot delete by tag; delete the digest instead"
                               if not is_digest(ref) else "this registry does not allow deleting manifests")
        if subject:
            await self._remove_from_referrers_tag(subject, ref)

    async def _referrers_index(self, subject: str) -> ImageIndex:
        try:
            return (await self.get(fallback_tag(subject))).as_index()
        except NotFoundError:
            return ImageIndex(schema_version=2, media_type=mt.OCI_INDEX, manifests=[])

    async def _add_to_referrers_tag(self, subject: str, desc: Descriptor) -> None:
        # A read-modify-write of one tag, serialised per subject within this client (other clients can still
        # race, as the spec acknowledges).
        async with self.ctx.state.lock(f"referrers:{self.ctx.name}:{subject}"):
            index = await self._referrers_index(subject)
            if any(d.digest == desc.digest for d in index.manifests):
                return
            index.manifests.append(desc)
            await self._put(fallback_tag(subject), Manifest.of(index, mt.OCI_INDEX))

    async def _remove_from_referrers_tag(self, subject: str, digest: str) -> None:
        async with self.ctx.state.lock(f"referrers:{self.ctx.name}:{subject}"):
            index = await self._referrers_index(subject)
            kept = [d for d in index.manifests if d.digest != digest]
            if len(kept) != len(index.manifests):
                index.manifests = kept
                await self._put(fallback_tag(subject), Manifest.of(index, mt.OCI_INDEX))

