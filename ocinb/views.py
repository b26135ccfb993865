"""Rich views: ``_repr_html_`` of the models and :func:`inspect`, a one-screen summary of an image.

Every string that came from a registry goes through :func:`esc` (control characters stripped, absurd
lengths cut, then ``html.escape``); the HTML is self-contained, styled inline, and has no JavaScript.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import media_types as mt
from .errors import ManifestError
from .frames import (
    HISTORY_COLUMNS,
    history_frame,
    layers_frame,
    platforms_frame,
    referrers_frame,
    typed_frame,
)
from .layer_frames import filesystem_frame
from .manifest import Manifest
from .models import ContainerConfig, Descriptor, ImageConfig, ImageIndex, ImageManifest
from .ops.describe import ImageReport
from .ops.doctor import RESULTS
from .ops.referrers import ReferrerNode
from .tarfs import WasteSummary

LARGEST_FILES = 10
"""How many of the squashed filesystem's largest files :class:`InspectView` lists."""

MAX_TEXT = 2000
"""Longer strings are cut to this many characters and end with an ellipsis."""
MAX_ROWS = 200
"""Tables show at most this many rows, then say how many were left out."""
MAX_ITEMS = 100
"""Lists and mappings (env, labels, annotations) show at most this many entries."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

_STYLE = ("font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',sans-serif;font-size:13px;"
          "line-height:1.4;max-width:100%;overflow-x:auto")
_TABLE = "border-collapse:collapse;margin:4px 0 10px 0;font-size:12px"
_CELL = "border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top"
_MONO = "font-family:SFMono-Regular,Menlo,Consolas,monospace;font-size:12px"
_BAR = "display:inline-block;height:0.8em;background:#4c8bf5;vertical-align:middle"


def clean(value: Any, limit: int = MAX_TEXT) -> str:
    """``value`` as text without control characters, cut to ``limit`` characters with an ellipsis."""
    text = _CONTROL.sub("", str(value))
    return text if len(text) <= limit else text[:limit] + "…"


def esc(value: Any, limit: int = MAX_TEXT) -> str:
    """The one escaping helper: cleaned (see :func:`clean`) then ``html.escape(..., quote=True)``."""
    return html.escape(clean(value, limit), quote=True)


def human_size(n: Any) -> str:
    """Bytes as ``12.3 MB`` (decimal units, like registries and Docker show them)."""
    if n is None or pd.isna(n):
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _mono(value: Any) -> str:
    return f'<span style="{_MONO}">{esc(value)}</span>'


def cell_text(value: Any) -> str:
    """A table cell as text: missing values (None, NA, NaN, NaT) empty, timestamps in UTC."""
    if value is None:
        return ""
    if isinstance(value, float | int) and not isinstance(value, bool) and pd.isna(value):
        return ""
    if value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def table(df: pd.DataFrame, *, bars: str | None = None, sizes: Iterable[str] = (), max_rows: int = MAX_ROWS,
          limit: int = 300) -> str:
    """An HTML table of ``df`` with every header and cell escaped by :func:`esc` (``escape=True`` semantics).

    ``sizes`` columns are shown human-readable; ``bars`` names a numeric column drawn as inline size bars.
    """
    size_cols = set(sizes)
    head = "".join(f'<th style="{_CELL}">{esc(c)}</th>' for c in df.columns)
    if bars:
        head += f'<th style="{_CELL}"></th>'
    peak = float(df[bars].max()) if bars and len(df) and pd.notna(df[bars].max()) else 0.0
    body = []
    for _, row in df.head(max_rows).iterrows():
        cells = []
        for col in df.columns:
            value = row[col]
            text = human_size(value) if col in size_cols else cell_text(value)
            cells.append(f'<td style="{_CELL}">{esc(text, limit)}</td>')
        if bars:
            value = row[bars]
            width = 0.0 if not peak or pd.isna(value) else 100.0 * float(value) / peak
            cells.append(f'<td style="{_CELL};min-width:160px"><span style="{_BAR};width:{width:.1f}%"></span></td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = len(df) - max_rows
    if more > 0:
        span = len(df.columns) + (1 if bars else 0)
        body.append(f'<tr><td style="{_CELL}" colspan="{span}">… {more} more rows</td></tr>')
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _pairs(items: Iterable[tuple[Any, Any]]) -> str:
    """A two-column key/value table, escaped."""
    rows = []
    for i, (key, value) in enumerate(items):
        if i >= MAX_ITEMS:
            rows.append(f'<tr><td style="{_CELL}" colspan="2">… more entries not shown</td></tr>')
            break
        rows.append(f'<tr><th style="{_CELL}">{esc(key)}</th><td style="{_CELL}">{esc(value)}</td></tr>')
    return f'<table style="{_TABLE}">{"".join(rows)}</table>' if rows else ""


def _list(values: Iterable[Any]) -> str:
    items = []
    for i, value in enumerate(values):
        if i >= MAX_ITEMS:
            items.append("<li>…</li>")
            break
        items.append(f'<li style="{_MONO}">{esc(value)}</li>')
    return f'<ul style="margin:2px 0 8px 0">{"".join(items)}</ul>' if items else ""


def _section(title: str, content: str) -> str:
    return f'<div style="margin-top:8px"><b>{html.escape(title)}</b>{content}</div>' if content else ""


def _wrap(title: str, body: str) -> str:
    return (f'<div class="ocinb-view" style="{_STYLE}"><div style="font-size:14px;margin-bottom:4px">'
            f"<b>{html.escape(title)}</b></div>{body}</div>")


def _annotations(annotations: Mapping[str, str] | None) -> str:
    return _section("Annotations", _pairs((annotations or {}).items()))


def _descriptor_fields(d: Descriptor) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = [("media type", d.media_type), ("digest", d.digest), ("size", human_size(d.size))]
    if d.artifact_type:
        fields.append(("artifact type", d.artifact_type))
    if d.platform is not None:
        fields.append(("platform", d.platform))
    if d.urls:
        fields.append(("urls", ", ".join(d.urls)))
    return fields


def _descriptors_table(descs: Sequence[Descriptor]) -> str:
    rows = [{"digest": d.digest, "media_type": d.media_type, "size": d.size,
             "platform": str(d.platform) if d.platform else None, "artifact_type": d.artifact_type,
             "attestation": "yes" if d.is_attestation else ""} for d in descs]
    df = pd.DataFrame(rows, columns=["digest", "media_type", "size", "platform", "artifact_type", "attestation"])
    df = df.dropna(axis=1, how="all")
    return table(df, sizes=["size"])


@functools.singledispatch
def render(obj: object) -> str:
    """Self-contained HTML for a model, a :class:`~ocinb.manifest.Manifest`, an :class:`InspectView` or a
    DataFrame; every registry-supplied string escaped (anything else: its escaped ``repr``)."""
    return f'<pre style="{_MONO}">{esc(repr(obj))}</pre>'


@render.register
def _render_frame(df: pd.DataFrame) -> str:
    return _wrap("Table", table(df))


@render.register
def _render_descriptor(d: Descriptor) -> str:
    return _wrap("Descriptor", _pairs(_descriptor_fields(d)) + _annotations(d.annotations))


@render.register
def _render_manifest(m: ImageManifest) -> str:
    head = [("media type", m.media_type or ""), ("artifact type", m.effective_artifact_type),
            ("config", m.config.digest), ("layers", len(m.layers)), ("total size", human_size(m.total_size))]
    if m.subject is not None:
        head.append(("subject", m.subject.digest))
    layers = _descriptors_table(m.layers)
    return _wrap("Image manifest", _pairs(head) + _section("Layers", layers) + _annotations(m.annotations))


@render.register
def _render_index(ix: ImageIndex) -> str:
    head = [("media type", ix.media_type or ""), ("entries", len(ix.manifests))]
    if ix.artifact_type:
        head.append(("artifact type", ix.artifact_type))
    if ix.subject is not None:
        head.append(("subject", ix.subject.digest))
    return _wrap("Image index", _pairs(head) + _section("Manifests", _descriptors_table(ix.manifests))
                 + _annotations(ix.annotations))


def config_summary(config: ImageConfig | None) -> dict[str, Any]:
    """The parts of a config a person asks about: entrypoint, cmd, env, labels, user, working dir, ports."""
    c = (config.config if config is not None else None) or ContainerConfig()
    return {
        "platform": str(config.platform) if config is not None and config.platform else None,
        "created": config.created if config is not None else None,
        "entrypoint": list(c.entrypoint or []),
        "cmd": list(c.cmd or []),
        "env": list(c.env or []),
        "labels": dict(c.labels or {}),
        "user": c.user or None,
        "working_dir": c.working_dir or None,
        "exposed_ports": sorted((c.exposed_ports or {}).keys()),
    }


def _render_summary(summary: Mapping[str, Any]) -> str:
    def argv(value: Sequence[str]) -> str:
        return " ".join(value)

    fields = [(k.replace("_", " "), v) for k, v in (
        ("platform", summary.get("platform")), ("created", summary.get("created")),
        ("entrypoint", argv(summary.get("entrypoint") or [])), ("cmd", argv(summary.get("cmd") or [])),
        ("user", summary.get("user")), ("working_dir", summary.get("working_dir")),
        ("exposed_ports", ", ".join(summary.get("exposed_ports") or [])),
    ) if v]
    out = _pairs(fields)
    out += _section("Environment", _list(summary.get("env") or []))
    out += _section("Labels", _pairs((summary.get("labels") or {}).items()))
    return out


@render.register
def _render_config(config: ImageConfig) -> str:
    steps = [{"step": i, "created": h.created, "created_by": h.created_by, "empty_layer": h.empty_layer}
             for i, h in enumerate(config.history or [])]
    hist = typed_frame(steps, {k: HISTORY_COLUMNS[k] for k in ("step", "created", "created_by", "empty_layer")})
    layers = len(config.rootfs.diff_ids) if config.rootfs is not None else 0
    body = _render_summary(config_summary(config)) + _pairs([("layers (diff_ids)", layers)])
    return _wrap("Image config", body + _section("History", table(hist) if len(hist) else ""))


@render.register
def _render_raw_manifest(m: Manifest) -> str:
    head = _pairs([("digest", m.digest), ("media type", m.media_type), ("size", human_size(m.size)),
                   ("repository", m.repository or ""), ("reference", m.reference or "")])
    try:
        inner = render(m.parsed)
    except ManifestError as exc:
        inner = f"<div>not a parseable manifest: {esc(exc)}</div>"
    return _wrap("Manifest", head + inner)


def _tree_html(nodes: Sequence[ReferrerNode], root: str) -> str:
    """Referrers as nested lists under the digest each one refers to."""
    children: dict[str, list[ReferrerNode]] = {}
    for node in nodes:
        children.setdefault(node.subject, []).append(node)

    def level(subject: str, depth: int) -> str:
        items = []
        for node in children.get(subject, [])[:MAX_ITEMS]:
            d = node.descriptor
            annotations = d.annotations or {}
            title = annotations.get(mt.ANNOTATION_TITLE)
            label = f"<b>{esc(d.artifact_type or d.media_type)}</b> {_mono(d.digest)} ({esc(human_size(d.size))})"
            if title:
                label += f" — {esc(title)}"
            created = annotations.get(mt.ANNOTATION_CREATED)
            if created:
                label += f" <i>{esc(created)}</i>"
            sub = level(d.digest, depth + 1) if depth < 16 else ""
            items.append(f"<li>{label}{sub}</li>")
        return f'<ul style="margin:2px 0">{"".join(items)}</ul>' if items else ""

    return level(root, 0)


@dataclass
class InspectView:
    """Everything :func:`inspect` gathered about one reference; renders itself in notebooks and terminals."""

    registry: str
    reference: str
    digest: str
    media_type: str
    size: int
    image_digest: str | None = None
    platform: str | None = None
    platforms: pd.DataFrame | None = None
    layers: pd.DataFrame | None = None
    config: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame | None = None
    referrers: list[ReferrerNode] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    largest_files: pd.DataFrame | None = None
    waste: WasteSummary | None = None
    contents_note: str | None = None
    os: str | None = None
    package_counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_report(cls, report: ImageReport) -> InspectView:
        """The view of what :func:`ocinb.ops.describe.inspect_image` gathered."""
        top = report.top
        parsed = top.parsed
        view = cls(report.registry, report.reference, str(top.digest), top.media_type, top.size,
                   annotations=dict(parsed.annotations or {}), note=report.note, referrers=list(report.referrers))
        if report.platforms is not None:
            view.platforms = platforms_frame(report.platforms)
        details = report.image
        if details is not None:
            view.image_digest = str(details.manifest.digest)
            view.platform = str(details.platform) if details.platform is not None else None
            view.layers = layers_frame(details.image, details.config)
            view.history = history_frame(details.image, details.config)
            if details.config is not None:
                view.config = config_summary(details.config)
        contents = report.contents
        if contents is not None:
            view.contents_note = contents.note
            view.waste = contents.waste
            view.os, view.package_counts = contents.os, dict(contents.package_counts)
            if contents.squashed is not None:
                fs = filesystem_frame(contents.squashed, contents.layers)
                view.largest_files = fs.nlargest(LARGEST_FILES, "content_size")[
                    ["path", "type", "content_size", "layer_index"]].reset_index(drop=True)
        return view

    @property
    def referrers_frame(self) -> pd.DataFrame:
        """The referrer tree as a DataFrame (columns as :func:`ocinb.frames.referrers_frame`)."""
        return referrers_frame(self.referrers)

    @property
    def full_reference(self) -> str:
        """The reference with its registry."""
        ref = self.reference
        return ref if ref.startswith(self.registry + "/") else f"{self.registry}/{ref}"

    def _repr_html_(self) -> str:
        head = [("reference", self.full_reference), ("digest", self.digest),
                ("media type", self.media_type), ("manifest size", human_size(self.size))]
        if self.image_digest and self.image_digest != self.digest:
            head.append(("image digest", self.image_digest))
        if self.platform:
            head.append(("platform", self.platform))
        body = _pairs(head)
        if self.note:
            body += f'<div style="color:#a00">{esc(self.note)}</div>'
        if self.platforms is not None and len(self.platforms):
            cols = ["platform", "digest", "image_size", "layer_count", "created", "is_attestation"]
            body += _section("Platforms", table(self.platforms[cols], sizes=["image_size"]))
        if self.layers is not None:
            total = int(self.layers["size"].sum()) if len(self.layers) else 0
            shown = self.layers[["position", "digest", "size", "created_by"]]
            body += _section(f"Layers ({len(self.layers)}, {human_size(total)})",
                             table(shown, bars="size", sizes=["size"], limit=160))
        if self.config:
            body += _section("Config", _render_summary(self.config))
        if self.history is not None and len(self.history):
            shown = self.history[["step", "created", "created_by", "empty_layer", "layer_size"]]
            body += _section("History", table(shown, sizes=["layer_size"], limit=300))
        if self.largest_files is not None and len(self.largest_files):
            body += _section("Largest files", table(self.largest_files, bars="content_size", sizes=["content_size"]))
        if self.os is not None or self.package_counts:
            body += _section("Packages", _pairs([("OS", self.os or "no os-release"), *(
                (eco, str(n)) for eco, n in sorted(self.package_counts.items()))]))
        if self.waste is not None:
            w = self.waste
            body += _section("Waste", _pairs([
                ("efficiency (dive)", f"{w.efficiency:.2%}"), ("wasted bytes (dive)", human_size(w.wasted_bytes)),
                ("user wasted (dive)", f"{w.user_wasted_percent:.2%}"),
                ("reclaimable, one copy kept", human_size(w.reclaimable_bytes)),
                ("hidden (overwritten, deleted, opaque)", human_size(w.hidden_bytes))]))
        elif self.contents_note:
            body += _section("Files", f"<div>{esc(self.contents_note)}</div>")
        body += _section("Annotations", _pairs(self.annotations.items()))
        body += _section(f"Referrers ({len(self.referrers)})", _tree_html(self.referrers, self.digest))
        return _wrap("ocinb.inspect", body)

    def __repr__(self) -> str:
        lines = [clean(self.full_reference, 300),
                 f"  digest:     {self.digest}", f"  media type: {clean(self.media_type, 200)}"]
        if self.image_digest and self.image_digest != self.digest:
            lines.append(f"  image:      {self.image_digest} ({self.platform or '?'})")
        if self.note:
            lines.append(f"  note:       {clean(self.note, 300)}")
        if self.platforms is not None and len(self.platforms):
            lines.append(f"  platforms ({len(self.platforms)}):")
            for row in self.platforms.head(30).itertuples():
                tag = " [attestation]" if row.is_attestation else ""
                lines.append(f"    {clean(cell_text(row.platform), 60):<20} {row.digest[:19]}  "
                             f"{human_size(row.image_size):>9}{tag}")
        if self.layers is not None:
            total = int(self.layers["size"].sum()) if len(self.layers) else 0
            lines.append(f"  layers ({len(self.layers)}, {human_size(total)}):")
            for row in self.layers.head(30).itertuples():
                lines.append(f"    {row.position:>3} {row.digest[:19]} {human_size(row.size):>9}  "
                             f"{clean(cell_text(row.created_by), 70)}")
        for key in ("entrypoint", "cmd"):
            if self.config.get(key):
                lines.append(f"  {key + ':':<11} {clean(' '.join(self.config[key]), 200)}")
        for key in ("user", "working_dir"):
            if self.config.get(key):
                lines.append(f"  {key + ':':<11} {clean(self.config[key], 200)}")
        if self.largest_files is not None and len(self.largest_files):
            lines.append("  largest files:")
            for row in self.largest_files.itertuples():
                lines.append(f"    {human_size(row.content_size):>9}  layer {row.layer_index:<3} "
                             f"{clean(row.path, 120)}")
        if self.os is not None or self.package_counts:
            counts = ", ".join(f"{n} {eco}" for eco, n in sorted(self.package_counts.items())) or "no packages"
            lines.append(f"  os:         {clean(self.os or 'no os-release', 120)}; {counts}")
        if self.waste is not None:
            w = self.waste
            lines.append(f"  waste:      efficiency {w.efficiency:.2%}, wasted {human_size(w.wasted_bytes)} (dive), "
                         f"hidden {human_size(w.hidden_bytes)}")
        elif self.contents_note:
            lines.append(f"  files:      {clean(self.contents_note, 200)}")
        if self.config.get("env"):
            lines.append(f"  env:        {len(self.config['env'])} variables")
        if self.config.get("labels"):
            lines.append(f"  labels:     {len(self.config['labels'])}")
        if self.history is not None:
            lines.append(f"  history:    {len(self.history)} steps")
        lines.append(f"  referrers:  {len(self.referrers)}")
        for node in self.referrers[:30]:
            d = node.descriptor
            lines.append(f"    {'  ' * (node.depth - 1)}- {clean(d.artifact_type or d.media_type, 80)} "
                         f"{d.digest[:19]}")
        return "\n".join(lines)


@render.register
def _render_view(view: InspectView) -> str:
    return view._repr_html_()


_RESULT_COLOURS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "info": "#0969da", "skip": "#6e7781"}


def _badge(result: str, text: str | None = None) -> str:
    colour = _RESULT_COLOURS.get(result, "#6e7781")
    return (f'<span style="display:inline-block;min-width:3em;text-align:center;padding:0 6px;border-radius:8px;'
            f'color:#fff;background:{colour};font-weight:600">{esc(text if text is not None else result)}</span>')


class DoctorReport(pd.DataFrame):
    """What ``ocinb.doctor`` found: a DataFrame (``check``, ``result``, ``evidence``, ``advice``) shown in a notebook
    as a report card. ``result`` is one of ``pass``, ``warn``, ``fail``, ``info``, ``skip``
    (see :data:`ocinb.ops.doctor.RESULTS`); ``attrs`` holds the registry, and what the write checks pushed."""

    @property
    def _constructor(self) -> type[DoctorReport]:
        return DoctorReport

    @classmethod
    def of(cls, df: pd.DataFrame) -> DoctorReport:
        """The report of a doctor frame, its ``attrs`` kept."""
        report = cls(df)
        report.attrs.update(df.attrs)
        return report

    @property
    def failed(self) -> bool:
        """Whether any check failed (``ocinb doctor`` exits 1 then)."""
        return "result" in self.columns and bool((self["result"] == "fail").any())

    def _repr_html_(self) -> str:
        return doctor_html(self)


def doctor_html(df: pd.DataFrame) -> str:
    """The report card: counts by result, then one row per check with its badge, evidence and advice (escaped)."""
    if not {"check", "result", "evidence", "advice"} <= set(df.columns):
        return _wrap("Registry doctor", table(df))
    counts = df["result"].value_counts().to_dict() if len(df) else {}
    summary = " ".join(f"{_badge(r, f'{r} {counts.get(r, 0)}')}" for r in RESULTS)
    where = esc(df.attrs.get("registry", ""))
    if df.attrs.get("repository"):
        where += " · " + esc(df.attrs["repository"])
    rows = []
    for row in df.head(MAX_ROWS).itertuples(index=False):
        result = cell_text(row.result)
        colour = _RESULT_COLOURS.get(result, "#6e7781")
        rows.append(f'<tr style="border-left:4px solid {colour}"><td style="{_CELL}">{_badge(result)}</td>'
                    f'<td style="{_CELL};{_MONO}">{esc(cell_text(row.check))}</td>'
                    f'<td style="{_CELL}">{esc(cell_text(row.evidence))}</td>'
                    f'<td style="{_CELL}">{esc(cell_text(row.advice))}</td></tr>')
    if len(df) > MAX_ROWS:
        rows.append(f'<tr><td style="{_CELL}" colspan="4">… {len(df) - MAX_ROWS} more checks</td></tr>')
    head = "".join(f'<th style="{_CELL}">{name}</th>' for name in ("result", "check", "evidence", "advice"))
    verdict = "some checks failed" if (df["result"] == "fail").any() else "no check failed"
    body = (f'<div style="margin-bottom:6px">{where} — {verdict}</div><div style="margin-bottom:6px">{summary}</div>'
            f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return _wrap("Registry doctor", body)


@render.register
def _render_doctor(report: DoctorReport) -> str:
    return doctor_html(report)
