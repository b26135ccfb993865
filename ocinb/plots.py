"""matplotlib charts of the frames: layer sizes of an image, image sizes by tag (re-exported by ``frames``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _mib(values: pd.Series) -> pd.Series:
    return values.astype("float64") / (1024 * 1024)


def plot_layers(df: pd.DataFrame, *, ax: Axes | None = None, top: int = 30) -> Axes:
    """Horizontal bars of layer sizes (MiB) from a :func:`layers` frame, the ``top`` biggest layers."""
    import matplotlib.pyplot  # noqa: F401 - pandas plotting needs matplotlib

    data = df.nlargest(top, "size").sort_values("position", ascending=False)
    labels = [f"#{p} {str(d)[7:19]}" for p, d in zip(data["position"], data["digest"], strict=True)]
    frame = pd.DataFrame({"layer": labels, "MiB": _mib(data["size"]).to_numpy()})
    axes = frame.plot.barh(x="layer", y="MiB", legend=False, ax=ax, title="Layer sizes (compressed)")
    axes.set_xlabel("MiB")
    axes.set_ylabel("")
    return axes


def plot_sizes(df: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Bars of image size (MiB) per tag, one bar per platform, from a :func:`sizes` frame."""
    import matplotlib.pyplot  # noqa: F401 - pandas plotting needs matplotlib

    data = df.assign(platform=df["platform"].fillna("(none)"), MiB=_mib(df["size"]))
    table = data.pivot_table(index="tag", columns="platform", values="MiB", aggfunc="sum", sort=False)
    axes = table.plot.bar(ax=ax, title="Image size by tag (compressed)", rot=45)
    axes.set_ylabel("MiB")
    axes.set_xlabel("tag")
    return axes
