"""The ``ocinb`` command: the notebook layer's tables in a terminal, image pull and copy, blob get/put, a demo.

Exit codes: 0 success, 1 registry, network or verification error, 2 bad usage (invalid references
included). Errors are one line on stderr; ``--debug`` adds the traceback. Heavy modules (pandas,
httpx) load only when a subcommand runs, so ``ocinb --help`` is instant.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import pandas as pd

    from .client import AsyncClient, AsyncRepository
    from .reference import Reference

FORMATS = ("table", "csv", "json")


class UsageError(Exception):
    """A bad command line found after parsing (exit code 2)."""


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Global options, accepted before and after the subcommand (subcommand values win when given)."""
    default: Any = argparse.SUPPRESS

    def dflt(value: Any) -> Any:
        return value if top else default

    parser.add_argument("--registry", "-r", metavar="R", default=dflt(None),
                        help="registry for references without one (default: docker.io, or $OCINB_REGISTRY)")
    parser.add_argument("--insecure", action="store_true", default=dflt(False),
                        help="plain HTTP (loopback hosts use it anyway)")
    parser.add_argument("--username", "-u", metavar="U", default=dflt(None),
                        help="user name (else $OCINB_USERNAME or Docker's config.json)")
    parser.add_argument("--password-stdin", action="store_true", default=dflt(False),
                        help="read the password (or token) from standard input")
    parser.add_argument("--format", "-f", choices=FORMATS, default=dflt("table"), help="output format of tables")
    parser.add_argument("--debug", action="store_true", default=dflt(False), help="show tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ocinb`` (also used by the docs and the tests)."""
    parser = argparse.ArgumentParser(
        prog="ocinb",
        description="Look into OCI registries: tags, platforms, layers, history, referrers, sizes; pull and copy "
                    "images, get and put blobs.",
        epilog="References are full, e.g. 127.0.0.1:5000/demo/app:1.0 or ghcr.io/org/app@sha256:…; "
               "exit codes: 0 ok, 1 registry or network error, 2 bad usage.",
    )
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    def add(name: str, help_text: str, within: Any = sub, key: str | None = None) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = within.add_parser(name, help=help_text, description=help_text)
        _add_common(p, top=False)
        p.set_defaults(key=key or name)
        return p

    p = add("tags", "list the tags of a repository")
    p.add_argument("ref", metavar="REPO_REF", help="repository, e.g. 127.0.0.1:5000/demo/app")
    p.add_argument("--resolve", action="store_true", help="also fetch each tag's digest, media type and size")
    p = add("platforms", "one row per platform of an image (index entries, attestations flagged)")
    p.add_argument("ref", metavar="REF")
    for name, text in (("layers", "the layers of an image, with the build step that made each"),
                       ("history", "the build history of an image (empty-layer steps included)")):
        p = add(name, text)
        p.add_argument("ref", metavar="REF")
        p.add_argument("--platform", "-p", metavar="P", help="platform of a multi-arch image, e.g. linux/arm64")
    p = add("referrers", "signatures, SBOMs and attestations pointing at an image")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--no-recursive", dest="recursive", action="store_false",
                   help="direct referrers only (not referrers of referrers)")
    p = add("catalog", "the repositories of a registry")
    p.add_argument("target", metavar="REGISTRY", help="registry host, e.g. 127.0.0.1:5000")
    p = add("inspect", "a plain-text summary of an image")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--platform", "-p", metavar="P", help="platform of a multi-arch image")
    p = add("sizes", "the size audit of a repository: tag × platform, unique and shared bytes")
    p.add_argument("ref", metavar="REPO_REF")
    p.add_argument("--tags", nargs="+", metavar="TAG", help="only these tags (default: all)")
    p = add("files", "every file of every layer of an image (layers streamed, verified, cached by digest)")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--platform", "-p", metavar="P", help="platform of a multi-arch image")
    p.add_argument("--layer", "-l", metavar="N|DIGEST", help="one layer: its index (negative from the top) or digest")
    p.add_argument("--digests", action="store_true", help="also hash every file's content (sha256)")
    p = add("filesystem", "the squashed filesystem of an image (whiteouts applied), with the layer of each path")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--platform", "-p", metavar="P", help="platform of a multi-arch image")
    p = add("packages", "the installed packages of an image (dpkg, apk, rpm, Python, npm, Go), from the layer streams")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--platform", "-p", metavar="P", help="platform of a multi-arch image")
    p = add("diff", "what changed between two images: files, layers, history, config, sizes, packages (only the "
                    "layers that differ are read)")
    p.add_argument("a", metavar="A", help="the older image")
    p.add_argument("b", metavar="B", help="the newer image (a registry of its own allowed)")
    p.add_argument("--platform", "-p", metavar="P", help="platform of multi-arch images")
    p.add_argument("--table", "-t", default="files",
                   choices=("files", "layers", "history", "config", "sizes", "packages"), help="which table to print")
    p.add_argument("--not-semantic", dest="semantic", action="store_false",
                   help="also compare times and user/group names (diffoci's default)")
    p.add_argument("--ignore", action="append", default=[], metavar="GLOB", help="paths to leave out (repeatable)")
    p = add("waste", "wasted space: paths copied across layers, dive's efficiency and the hidden bytes")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--platform", "-p", metavar="P", help="platform of a multi-arch image")
    p.add_argument("--ci", action="store_true", help="apply dive's CI rules and exit 1 when one fails, as dive --ci")
    p.add_argument("--lowest-efficiency", type=float, default=0.9, metavar="F", help="dive's rule (default 0.9)")
    p.add_argument("--highest-wasted-bytes", type=int, default=None, metavar="N",
                   help="dive's rule (default: disabled)")
    p.add_argument("--highest-user-wasted-percent", type=float, default=0.1, metavar="F",
                   help="dive's rule, a fraction (default 0.1)")
    p = add("pull", "pull an image: resolve the platform, fetch the config; with -o also download the layers "
                    "(verified) and write manifest.json and config.json")
    p.add_argument("ref", metavar="REF", help="image, e.g. 127.0.0.1:5000/demo/app:1.0 (blobs: ocinb blob get)")
    p.add_argument("--platform", "-p", metavar="P", help="platform of a multi-arch image (default: the only one, "
                                                         "else linux/amd64)")
    p.add_argument("-o", "--output", metavar="DIR", help="directory to write the image into (created if missing)")
    p = add("push", "(blobs moved to `ocinb blob put`; pushing images is not available from the command line)")
    p.add_argument("ref", metavar="REPO_REF")
    p.add_argument("file", metavar="FILE")
    p = add("copy", "copy an image (index, manifests, blobs) to another repository or registry, like crane copy")
    p.add_argument("src", metavar="SRC", help="source image, e.g. 127.0.0.1:5000/demo/app:1.0")
    p.add_argument("dst", metavar="DST", help="destination; without a tag it takes the source's tag")
    p.add_argument("--platform", "-p", metavar="P", action="append", dest="platforms",
                   help="copy only this platform of an index (repeatable; the index is filtered)")
    p.add_argument("--referrers", action="store_true", help="also copy signatures, SBOMs and attestations")
    blob = sub.add_parser("blob", help="download or upload one blob", description="download or upload one blob")
    blob_sub = blob.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = add("get", "download one blob to a file (digest verified; nothing left behind on failure)", blob_sub,
            "blob get")
    p.add_argument("ref", metavar="REPO_REF@DIGEST")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p = add("put", "upload a file as a blob and print its digest", blob_sub, "blob put")
    p.add_argument("ref", metavar="REPO_REF", help="repository; REPO@DIGEST checks the file against DIGEST")
    p.add_argument("file", metavar="FILE")
    p = add("doctor", "check what a registry supports (exit code 1 when a check fails)")
    p.add_argument("target", metavar="REGISTRY", help="registry host, e.g. 127.0.0.1:5000 or ghcr.io")
    p.add_argument("repository", metavar="REPO", nargs="?",
                   help="repository to look into (default: the first of the catalog, when served)")
    p.add_argument("--write", metavar="SCRATCH_REPO",
                   help="also check uploads, mount, deletes and OCI-Subject in this scratch repository "
                        "(everything pushed is deleted)")
    p.add_argument("--ca-file", metavar="PEM",
                   help="CA bundle to verify the registry's certificate with (implies TLS, even on local hosts)")
    p = add("crawl", "crawl registries (their catalog), repositories (every tag) or references into Parquet, one "
                     "dataset per table; run it again after any stop to resume")
    p.add_argument("targets", nargs="+", metavar="TARGET",
                   help="127.0.0.1:5000 (a registry), ghcr.io/org/app (a repository) or a reference")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory of the datasets and journal")
    p.add_argument("--tables", metavar="T,T", help="comma-separated: tags, platforms, layers, history, referrers, "
                                                    "sizes (default: all but sizes)")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start over, forgetting the journal")
    p.add_argument("--rps", type=float, metavar="N", help="at most N requests per second per registry")
    p.add_argument("--reserve", type=int, metavar="N",
                   help="never spend the last N of the registry's ratelimit-remaining (Docker Hub)")
    p.add_argument("--wait", action="store_true", help="at the reserve, wait for the window to reopen (else stop)")
    p = add("demo", "start a local registry, seed it with demo images and print a summary")
    p.add_argument("--keep", action="store_true",
                   help="leave the registry running and print OCINB_REGISTRY=… lines for `eval`")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.add_argument("--storage", metavar="DIR", help="registry storage directory (default: a temporary one)")
    return parser


def parse_ref(text: str, args: argparse.Namespace) -> Reference:
    """A reference from the command line; ``--registry`` (or $OCINB_REGISTRY) fills in a missing registry."""
    from .reference import Reference

    default = args.registry or os.environ.get("OCINB_REGISTRY") or "docker.io"
    return Reference.parse(text, default_registry=default)


def _password(args: argparse.Namespace, stdin: TextIO) -> str | None:
    if not args.password_stdin:
        return None
    if not args.username:
        raise UsageError("--password-stdin needs --username")
    password = stdin.read().rstrip("\r\n")
    if not password:
        raise UsageError("--password-stdin read an empty password")
    return password


def _client_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if args.username:
        kwargs["username"] = args.username
        kwargs["password"] = args.password
    if args.insecure:
        kwargs["insecure"] = True
    return kwargs


def _client(registry: str, args: argparse.Namespace, **extra: Any) -> AsyncClient:
    from .client import AsyncClient

    return AsyncClient(registry, **_client_kwargs(args), **extra)


def _platform(text: str | None) -> Any:
    if text is None:
        return None
    from .models import Platform

    try:
        return Platform.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def write_frame(df: pd.DataFrame, fmt: str, out: TextIO) -> None:
    """Write ``df`` as an aligned table, CSV, or JSON records (ISO 8601 datetimes)."""
    if fmt == "csv":
        df.to_csv(out, index=False, date_format="%Y-%m-%dT%H:%M:%SZ", lineterminator="\n")
    elif fmt == "json":
        out.write(df.to_json(orient="records", date_format="iso", date_unit="s"))
        out.write("\n")
    elif df.empty:
        out.write("  ".join(str(c) for c in df.columns) + "\n(no rows)\n")
    else:
        out.write(_table(df) + "\n")


def _cell(value: Any) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(df: pd.DataFrame) -> str:
    """An aligned plain-text table: text left-aligned, numbers right-aligned, missing values blank."""
    import pandas as pd

    columns: list[list[str]] = []
    numeric: list[bool] = []
    for name in df.columns:
        series = df[name]
        numeric.append(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))
        columns.append([str(name), *(_cell(v) for v in series.tolist())])
    widths = [max(len(v) for v in col) for col in columns]
    lines = []
    for row in range(len(df) + 1):
        cells = [col[row].rjust(w) if num else col[row].ljust(w)
                 for col, w, num in zip(columns, widths, numeric, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _ident(ref: Reference) -> str:
    """``repo:tag``/``repo@digest`` as the client methods take them."""
    if ref.digest:
        return f"{ref.repository}@{ref.digest}"
    return f"{ref.repository}:{ref.tag_or_latest}"


def _repository_only(ref: Reference, what: str) -> None:
    if ref.tag or ref.digest:
        raise UsageError(f"{what} takes a repository without tag or digest, got {ref}")


def _progress() -> bool:
    """Progress bars on a terminal only, never in pipelines and logs."""
    return sys.stderr.isatty()


def _written(df: pd.DataFrame, args: argparse.Namespace, out: TextIO) -> int:
    write_frame(df, args.format, out)
    return 0


async def _doctor(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``ocinb doctor``: the report as a table, CSV or JSON; 1 when any check failed."""
    from .errors import InvalidReferenceError
    from .reference import parse_registry, validate_repository

    try:
        registry = parse_registry(args.target)
        for name in (args.repository, args.write):
            if name is not None:
                validate_repository(name)
    except InvalidReferenceError as exc:
        raise UsageError(str(exc)) from None
    if args.ca_file is not None and not os.path.isfile(args.ca_file):
        raise UsageError(f"no such file: {args.ca_file}")
    kwargs = _client_kwargs(args)
    if args.ca_file is not None:  # a CA to verify with means TLS, local hosts included
        kwargs["verify"], kwargs["insecure"] = args.ca_file, False
    from .client import AsyncClient

    async with AsyncClient(registry, **kwargs) as client:
        report = await client.doctor(args.repository, write=args.write)
    write_frame(report, args.format, out)
    return 1 if report.failed else 0


def _layer_arg(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


async def _files(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    async with _client(ref.registry, args) as client:
        try:
            df = await client.files(_ident(ref), _platform(args.platform), _layer_arg(args.layer),
                                    digests=args.digests, progress=_progress())
        except LookupError as exc:  # --layer names no layer
            raise UsageError(str(exc)) from None
    return _written(df, args, out)


async def _filesystem(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    async with _client(ref.registry, args) as client:
        df = await client.filesystem(_ident(ref), _platform(args.platform), progress=_progress())
    return _written(df, args, out)


async def _packages(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    async with _client(ref.registry, args) as client:
        df = await client.packages(_ident(ref), _platform(args.platform))
    return _written(df, args, out)


async def _diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``ocinb diff A B``: one table of the diff; in table format a summary line first."""
    a, b = parse_ref(args.a, args), parse_ref(args.b, args)
    async with _client(a.registry, args) as ca:
        if b.registry == a.registry:
            found = await ca.diff(_ident(a), _ident(b), _platform(args.platform), semantic=args.semantic,
                                  ignore_paths=args.ignore)
        else:
            async with _client(b.registry, args) as cb:
                found = await ca.diff(_ident(a), _ident(b), _platform(args.platform), semantic=args.semantic,
                                      ignore_paths=args.ignore, b_client=cb)
    if args.format == "table":
        out.write(repr(found) + "\n")
    return _written(found.table(args.table), args, out)


async def _waste(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``ocinb waste``: the table and dive's numbers; with ``--ci`` dive's rules and its exit code."""
    ref = parse_ref(args.ref, args)
    async with _client(ref.registry, args) as client:
        df = await client.waste(_ident(ref), _platform(args.platform), progress=_progress())
    summary = df.attrs["summary"]
    if not args.ci or args.format != "table":
        write_frame(df, args.format, out)
    if args.format == "table":
        out.write(f"efficiency: {summary.efficiency:.4%}\nwastedBytes: {summary.wasted_bytes} bytes\n"
                  f"userWastedPercent: {summary.user_wasted_percent:.4%}\n"
                  f"reclaimableBytes: {summary.reclaimable_bytes} bytes\nhiddenBytes: {summary.hidden_bytes} bytes\n")
    if not args.ci:
        return 0
    failed = summary.ci_check(args.lowest_efficiency, args.highest_wasted_bytes, args.highest_user_wasted_percent)
    if args.format == "table":
        for line in failed:
            out.write(f"FAIL: {line}\n")
        out.write(f"Result: {'FAIL' if failed else 'PASS'}\n")
    return 1 if failed else 0


async def _tags(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    _repository_only(ref, "tags")
    async with _client(ref.registry, args) as client:
        df = await client.tags(ref.repository, resolve=args.resolve, progress=_progress())
    return _written(df, args, out)


async def _sizes(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    _repository_only(ref, "sizes")
    async with _client(ref.registry, args) as client:
        df = await client.sizes(ref.repository, args.tags, progress=_progress())
    return _written(df, args, out)


async def _platforms(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    async with _client(ref.registry, args) as client:
        df = await client.platforms(_ident(ref), progress=_progress())
    return _written(df, args, out)


async def _layers(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    async with _client(ref.registry, args) as client:
        df = await client.layers(_ident(ref), _platform(args.platform))
    return _written(df, args, out)


async def _history(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    async with _client(ref.registry, args) as client:
        df = await client.history(_ident(ref), _platform(args.platform))
    return _written(df, args, out)


async def _referrers(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    async with _client(ref.registry, args) as client:
        df = await client.referrers(_ident(ref), recursive=args.recursive)
    return _written(df, args, out)


async def _catalog(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .reference import parse_registry

    async with _client(parse_registry(args.target), args) as client:
        df = await client.catalog_frame()
    return _written(df, args, out)


async def _inspect(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.format != "table":
        raise UsageError("inspect prints a text summary; for csv or json use platforms, layers or history")
    ref = parse_ref(args.ref, args)
    async with _client(ref.registry, args) as client:
        view = await client.inspect(_ident(ref), _platform(args.platform))
    out.write(repr(view).rstrip("\n") + "\n")
    return 0


PULL_COLUMNS = {"kind": "str", "digest": "str", "media_type": "str", "size": "int64", "path": "str"}
"""What ``ocinb pull`` prints: one row per document and blob of the image, with the file written (if any)."""


async def _is_manifest(repo: AsyncRepository, digest: str) -> bool:
    """Whether the blob ``digest`` holds a manifest, judged by its content: distribution answers a manifest
    request for another blob's digest with 500, which the client would retry for seconds."""
    from .errors import ManifestError
    from .manifest import Manifest

    size = (await repo.blobs.head(digest)).size
    if size > repo.client.max_manifest_size:
        return False
    try:
        parsed = Manifest.from_bytes(await repo.blobs.get(digest, size=size)).parsed
    except (ManifestError, ValueError):
        return False
    return parsed is not None


async def _pull(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Pull an image as ``client.pull`` does; refuse (exit 2) the blob forms ``ocinb pull`` used to take."""
    import pandas as pd

    ref = parse_ref(args.ref, args)
    dest = Path(args.output) if args.output else None
    if dest is not None and dest.exists() and not dest.is_dir():
        raise UsageError(f"-o {args.output} is a file: ocinb pull now pulls an image into a directory; "
                         f"to download one blob use `ocinb blob get REPO@DIGEST -o FILE`")
    async with _client(ref.registry, args) as client:
        repo = client.repo(ref.repository)
        if ref.digest and await repo.blobs.exists(ref.digest) and not await _is_manifest(repo, ref.digest):
            raise UsageError(f"{ref.digest} is a blob, not an image: blobs are now downloaded with "
                             f"`ocinb blob get {args.ref} -o FILE`")
        pulled = await repo.pull(ref.identifier, platform=_platform(args.platform), layers=dest is not None,
                                 dest=dest)
    resolved = pulled.resolved
    image = pulled.manifest
    rows: list[dict[str, Any]] = []
    if resolved.top.digest != resolved.manifest.digest:
        rows.append({"kind": "index", "digest": str(resolved.top.digest), "media_type": resolved.top.media_type,
                     "size": resolved.top.size, "path": ""})
    documents = {"manifest": "", "config": ""}
    if dest is not None:
        dest.mkdir(parents=True, exist_ok=True)
        for name, data in (("manifest", resolved.manifest.data), ("config", pulled.config_bytes)):
            path = dest / f"{name}.json"
            path.write_bytes(data)
            documents[name] = str(path)
    rows.append({"kind": "manifest", "digest": str(resolved.manifest.digest),
                 "media_type": resolved.manifest.media_type, "size": resolved.manifest.size,
                 "path": documents["manifest"]})
    rows.append({"kind": "config", "digest": image.config.digest, "media_type": image.config.media_type,
                 "size": image.config.size, "path": documents["config"]})
    paths = [str(p) for p in pulled.layer_paths] or [""] * len(image.layers)
    rows += [{"kind": "layer", "digest": layer.digest, "media_type": layer.media_type, "size": layer.size,
              "path": path} for layer, path in zip(image.layers, paths, strict=True)]
    return _written(pd.DataFrame(rows, columns=list(PULL_COLUMNS)).astype(PULL_COLUMNS), args, out)


async def _push(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The old blob upload: refused (exit 2) with the new command, so no script silently changes meaning."""
    raise UsageError(f"uploading a file as a blob is now `ocinb blob put {args.ref} {args.file}` "
                     f"(ocinb push of images is not available from the command line)")


async def _copy(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Copy SRC to DST with one client per side (blobs are mounted when both are on one registry)."""
    import pandas as pd

    src, dst = parse_ref(args.src, args), parse_ref(args.dst, args)
    if args.username and src.registry != dst.registry:
        raise UsageError("--username would send one password to two registries; for a copy between "
                         "registries credentials come from $OCINB_USERNAME/$OCINB_PASSWORD or Docker's config.json")
    platforms = [_platform(p) for p in args.platforms] if args.platforms else None
    dst_ref = str(dst) if dst.tag or dst.digest else dst.name  # no tag: the source's tag
    async with _client(src.registry, args) as src_client, _client(dst.registry, args) as dst_client:
        report = await src_client.copy(str(src), dst_ref, dst_client=dst_client, platforms=platforms,
                                       referrers=args.referrers)
    row = {"source": str(src), "destination": dst_ref, "digest": report.digest, "manifests": report.manifests,
           "mounted": report.mounted, "streamed": report.streamed, "skipped": report.skipped,
           "referrers": report.referrers, "bytes_streamed": report.bytes_streamed}
    return _written(pd.DataFrame([row]), args, out)


async def _blob_get(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    if not ref.digest:
        raise UsageError(f"blob get needs a blob digest: REPO_REF@sha256:…, got {args.ref}")
    async with _client(ref.registry, args) as client:
        path = await client.repo(ref.repository).blobs.download(ref.digest, args.output)
    out.write(f"{ref.digest} {path.stat().st_size} {path}\n")
    return 0


async def _blob_put(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    if ref.tag:
        raise UsageError(f"blob put uploads a blob to a repository; drop the tag from {args.ref}")
    if not os.path.isfile(args.file):
        raise UsageError(f"no such file: {args.file}")
    async with _client(ref.registry, args) as client:
        desc = await client.repo(ref.repository).blobs.upload(args.file, ref.digest)
    out.write(f"{desc.digest}\n")
    return 0


async def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Start a LocalRegistry, seed it, print a summary (or, with --keep, the lines to reach it)."""
    import atexit

    from .demo import seed
    from .testing import LocalRegistry

    registry = LocalRegistry(port=args.port, storage_dir=args.storage, detach=args.keep)
    registry.start()
    try:
        info = seed(registry.address)
        err.write(info.summary() + "\n")
        if args.keep:
            atexit.unregister(registry.stop)
            out.write(f"OCINB_REGISTRY={registry.address}\nOCINB_REGISTRY_PID={registry.pid}\n"
                      f"OCINB_IMAGE={info.image}\n")
            if args.storage is None and registry.storage_dir is not None:
                # The temporary directory holding config, log and storage: remove it after stopping.
                out.write(f"OCINB_REGISTRY_DIR={registry.storage_dir.parent}\n")
            err.write(f"registry left running at {registry.url} (pid {registry.pid}); stop it with: "
                      f"kill {registry.pid}\n")
            return 0
        await _platforms(_with(args, ref=info.reference()), out, err)
        out.write("\n")
        await _sizes(_with(args, ref=f"{info.registry}/demo/app", tags=None), out, err)
    finally:
        if not args.keep:
            registry.stop()
    return 0


async def _crawl(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._defaults import crawl_with
    from ._http.budget import RateBudget
    from .errors import RateBudgetExceededError
    from .ops.crawl import CrawlReport

    try:
        budget = RateBudget(args.rps, args.reserve, args.wait)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    clients: dict[str, AsyncClient] = {}

    def client_for(registry: str) -> AsyncClient:
        if registry not in clients:
            clients[registry] = _client(registry, args, rate_budget=budget)
        return clients[registry]

    def summary(report: CrawlReport) -> str:
        rows = ", ".join(f"{name} {report.rows.get(name, 0)}" for name in report.tables)
        return (f"{report.done} of {report.units} units done now, {report.skipped} already done; rows: {rows}; "
                f"{report.errors} errors (in {report.out}/errors)\n")

    try:
        report = await crawl_with(client_for, args.targets, args.output, args.tables, resume=args.resume,
                                  progress=_progress())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except RateBudgetExceededError as exc:
        if isinstance(exc.done, CrawlReport):
            err.write(summary(exc.done))
        raise
    finally:
        for c in clients.values():
            await c.aclose()
    out.write(summary(report))
    return 0


def _with(args: argparse.Namespace, **changes: Any) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), **changes})


Handler = Callable[[argparse.Namespace, TextIO, TextIO], Coroutine[Any, Any, int]]

COMMANDS: dict[str, Handler] = {
    "tags": _tags, "platforms": _platforms, "layers": _layers, "history": _history, "referrers": _referrers,
    "catalog": _catalog, "inspect": _inspect, "sizes": _sizes, "pull": _pull, "push": _push, "copy": _copy,
    "files": _files, "filesystem": _filesystem, "packages": _packages, "diff": _diff, "waste": _waste,
    "doctor": _doctor, "blob get": _blob_get, "blob put": _blob_put, "crawl": _crawl, "demo": _demo,
}
"""Each subcommand's handler, by its name as typed (``blob get`` for nested ones)."""


def describe_error(exc: BaseException) -> str:
    """One line for stderr: OCI code and message with the request, or the error text (never credentials)."""
    from .errors import RegistryError

    if isinstance(exc, RegistryError):
        where = f"({exc.method} {exc.url})"
        if exc.errors:
            first = exc.errors[0]
            text = f"{first.code}: {first.message}" if first.message else first.code
            more = f" (+{len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
            line = f"{text}{more} {where}"
        else:
            body = " ".join(exc.body.split())[:160]
            line = f"HTTP {exc.status} {where}" + (f": {body}" if body else "")
    else:
        line = str(exc) or type(exc).__name__
    return " ".join(line.split())


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None) -> int:
    """Run ``ocinb`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    out, err = sys.stdout, sys.stderr
    try:
        from .errors import InvalidReferenceError, OcinbError

        args.password = _password(args, stdin or sys.stdin)
        return asyncio.run(COMMANDS[args.key](args, out, err))
    except (UsageError, InvalidReferenceError) as exc:
        if args.debug:
            traceback.print_exc(file=err)
        err.write(f"ocinb {args.key}: error: {describe_error(exc)}\n")
        return 2
    except (OcinbError, RuntimeError, OSError) as exc:
        if args.debug:
            traceback.print_exc(file=err)
        err.write(f"error: {describe_error(exc)}\n")
        return 1
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc(file=err)
        err.write(f"error: unexpected {type(exc).__name__}: {describe_error(exc)} (run with --debug for details)\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
