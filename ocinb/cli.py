"""The ``ocinb`` command: the notebook layer's tables in a terminal, blob pull/push, and a seeded demo registry.

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
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import pandas as pd

    from .client import AsyncClient
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
        description="Look into OCI registries: tags, platforms, layers, history, referrers, sizes.",
        epilog="References are full, e.g. 127.0.0.1:5000/demo/app:1.0 or ghcr.io/org/app@sha256:…; "
               "exit codes: 0 ok, 1 registry or network error, 2 bad usage.",
    )
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(p, top=False)
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
    p = add("waste", "wasted space: paths copied across layers, dive's efficiency and the hidden bytes")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--platform", "-p", metavar="P", help="platform of a multi-arch image")
    p.add_argument("--ci", action="store_true", help="apply dive's CI rules and exit 1 when one fails, as dive --ci")
    p.add_argument("--lowest-efficiency", type=float, default=0.9, metavar="F", help="dive's rule (default 0.9)")
    p.add_argument("--highest-wasted-bytes", type=int, default=None, metavar="N",
                   help="dive's rule (default: disabled)")
    p.add_argument("--highest-user-wasted-percent", type=float, default=0.1, metavar="F",
                   help="dive's rule, a fraction (default 0.1)")
    p = add("pull", "download one blob to a file (digest verified)")
    p.add_argument("ref", metavar="REPO_REF@DIGEST")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p = add("push", "upload a file as a blob and print its digest")
    p.add_argument("ref", metavar="REPO_REF")
    p.add_argument("file", metavar="FILE")
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


def _client(registry: str, args: argparse.Namespace) -> AsyncClient:
    from .client import AsyncClient

    kwargs: dict[str, Any] = {}
    if args.username:
        kwargs["username"] = args.username
        kwargs["password"] = args.password
    if args.insecure:
        kwargs["insecure"] = True
    return AsyncClient(registry, **kwargs)


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


async def _run_frame(args: argparse.Namespace, out: TextIO) -> int:
    """The table subcommands: build the DataFrame with the same helpers notebooks use, write it."""
    if args.command == "catalog":
        from .errors import InvalidReferenceError
        from .reference import parse_registry

        try:
            registry = parse_registry(args.target)
        except InvalidReferenceError as exc:
            raise UsageError(str(exc)) from None
        ref = None
    else:
        ref = parse_ref(args.ref, args)
        registry = ref.registry
    client = _client(registry, args)
    try:
        if args.command == "catalog":
            df = await client.catalog_frame()
        else:
            assert ref is not None
            progress = sys.stderr.isatty()  # no bar in pipelines and logs
            if args.command == "tags":
                _repository_only(ref, "tags")
                df = await client.tags(ref.repository, resolve=args.resolve, progress=progress)
            elif args.command == "sizes":
                _repository_only(ref, "sizes")
                df = await client.sizes(ref.repository, args.tags, progress=progress)
            elif args.command == "platforms":
                df = await client.platforms(_ident(ref), progress=progress)
            elif args.command == "layers":
                df = await client.layers(_ident(ref), _platform(args.platform))
            elif args.command == "history":
                df = await client.history(_ident(ref), _platform(args.platform))
            else:
                df = await client.referrers(_ident(ref), recursive=args.recursive)
    finally:
        await client.aclose()
    write_frame(df, args.format, out)
    return 0


def _layer_arg(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


async def _run_inside(args: argparse.Namespace, out: TextIO) -> int:
    """files, filesystem and waste: the tables of what is inside the layers; ``waste --ci`` as ``dive --ci``."""
    ref = parse_ref(args.ref, args)
    client = _client(ref.registry, args)
    progress = sys.stderr.isatty()
    platform = _platform(args.platform)
    try:
        if args.command == "files":
            try:
                df = await client.files(_ident(ref), platform, _layer_arg(args.layer), digests=args.digests,
                                        progress=progress)
            except LookupError as exc:  # --layer names no layer
                raise UsageError(str(exc)) from None
        elif args.command == "filesystem":
            df = await client.filesystem(_ident(ref), platform, progress=progress)
        else:
            df = await client.waste(_ident(ref), platform, progress=progress)
    finally:
        await client.aclose()
    if args.command != "waste":
        write_frame(df, args.format, out)
        return 0
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


def plain_text(view: Any) -> str:
    """The terminal rendering of an inspect view: its ``to_text()`` if it has one, else its ``repr``."""
    to_text = getattr(view, "to_text", None)
    if callable(to_text):
        return str(to_text())
    return repr(view)


async def _run_inspect(args: argparse.Namespace, out: TextIO) -> int:
    if args.format != "table":
        raise UsageError("inspect prints a text summary; for csv or json use platforms, layers or history")
    ref = parse_ref(args.ref, args)
    client = _client(ref.registry, args)
    try:
        view = await client.inspect(_ident(ref), _platform(args.platform))
    finally:
        await client.aclose()
    out.write(plain_text(view).rstrip("\n") + "\n")
    return 0


async def _run_pull(args: argparse.Namespace, out: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    if not ref.digest:
        raise UsageError(f"pull needs a blob digest: REPO_REF@sha256:…, got {args.ref}")
    client = _client(ref.registry, args)
    try:
        path = await client.repo(ref.repository).blobs.download(ref.digest, args.output)
    finally:
        await client.aclose()
    out.write(f"{ref.digest} {path.stat().st_size} {path}\n")
    return 0


async def _run_push(args: argparse.Namespace, out: TextIO) -> int:
    ref = parse_ref(args.ref, args)
    if ref.tag:
        raise UsageError(f"push uploads a blob to a repository; drop the tag from {args.ref}")
    if not os.path.isfile(args.file):
        raise UsageError(f"no such file: {args.file}")
    client = _client(ref.registry, args)
    try:
        desc = await client.repo(ref.repository).blobs.upload(args.file, ref.digest)
    finally:
        await client.aclose()
    out.write(f"{desc.digest}\n")
    return 0


def _run_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Start a LocalRegistry (installing Debian's docker-registry when root), seed it, print a summary."""
    import atexit

    from .demo import seed
    from .testing import LocalRegistry

    can_install = hasattr(os, "geteuid") and os.geteuid() == 0
    registry = LocalRegistry(port=args.port, storage_dir=args.storage, install=can_install, detach=args.keep)
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
        _run(_run_frame, _with(args, command="platforms", ref=info.reference()), out)
        out.write("\n")
        _run(_run_frame, _with(args, command="sizes", ref=f"{info.registry}/demo/app", tags=None), out)
    finally:
        if not args.keep:
            registry.stop()
    return 0


def _with(args: argparse.Namespace, **changes: Any) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), **changes})


def _run(fn: Callable[[argparse.Namespace, TextIO], Coroutine[Any, Any, int]], args: argparse.Namespace,
         out: TextIO) -> int:
    return asyncio.run(fn(args, out))


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


_HANDLERS: dict[str, Callable[[argparse.Namespace, TextIO], Coroutine[Any, Any, int]]] = {
    "tags": _run_frame, "platforms": _run_frame, "layers": _run_frame, "history": _run_frame,
    "referrers": _run_frame, "catalog": _run_frame, "sizes": _run_frame,
    "inspect": _run_inspect, "pull": _run_pull, "push": _run_push,
    "files": _run_inside, "filesystem": _run_inside, "waste": _run_inside,
}


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
        if args.command == "demo":
            return _run_demo(args, out, err)
        return _run(_HANDLERS[args.command], args, out)
    except (UsageError, InvalidReferenceError) as exc:
        if args.debug:
            traceback.print_exc(file=err)
        err.write(f"ocinb {args.command}: error: {describe_error(exc)}\n")
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
