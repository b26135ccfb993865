"""ipywidgets pickers (repository, tag, platform, layer) and ``explorer``, which composes them with a live view.

Every network call runs on ocinb's background loop; results are applied from its done-callback, so the
kernel never blocks. Stale results (a newer selection came meanwhile) are dropped, and errors land in a
status widget as escaped text, never as a traceback. ``wait()`` blocks until the pending work is done.
The job runner is ``_jobs``, the pickers ``pickers``, the explorer ``explorers``.
"""

from .explorers import Explorer, explorer
from .pickers import LayerPicker, PlatformPicker, RepositoryPicker, TagPicker

__all__ = ["Explorer", "LayerPicker", "PlatformPicker", "RepositoryPicker", "TagPicker", "explorer"]
