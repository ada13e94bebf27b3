"""Loading the OMATrust trust anchors: the built-in default (package data) or the file ``OMATRUST_TRUST_ANCHORS``
names. The rules about what the anchors mean are in ``service.verdicts.anchors``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from service.verdicts.anchors import TrustAnchors, parse_trust_anchors

DEFAULT_FILE = "omatrust_trust_anchors.json"


def load_trust_anchors(*, path: str | None = None) -> TrustAnchors:
    """The anchors in ``path``, or the built-in default when ``path`` is None or empty.

    Raises:
        OSError: the file cannot be read.
        MalformedInput(BAD_FIELD_VALUE): it is not a trust-anchor file.
    """
    if path:
        return parse_trust_anchors(data=Path(path).read_bytes())
    return parse_trust_anchors(data=resources.files("service").joinpath(DEFAULT_FILE).read_bytes())
