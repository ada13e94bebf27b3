"""Pure parsing of OMATrust controller TXT records: ``v=1;controller=<DID>[;controller=<DID>…]``."""

from __future__ import annotations

from collections.abc import Iterable


def parse_controller_records(*, records: Iterable[str]) -> tuple[str, ...] | None:
    """Controllers listed by the ``v=1`` records among ``records`` (each a TXT record with its strings joined).

    Fields are ``;``-separated ``key=value`` pairs; spaces around fields, keys and values are ignored, keys are
    case-insensitive, unknown keys are ignored. A record without a ``v=1`` field (another version, or another use
    of the name) is ignored. Controllers of all ``v=1`` records are merged in order, without duplicates.
    Returns None when no record is ``v=1`` (the name says nothing about controllers).
    """
    found = False
    controllers: dict[str, None] = {}
    for record in records:
        fields = [f.partition("=") for f in record.split(";")]
        pairs = [(k.strip().lower(), v.strip()) for k, sep, v in fields if sep]
        if ("v", "1") not in pairs:
            continue
        found = True
        for key, value in pairs:
            if key == "controller" and value:
                controllers[value] = None
    return tuple(controllers) if found else None
