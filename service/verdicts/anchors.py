"""OMATrust trust anchors: which EAS schema UIDs count as OMATrust attestations, and which issuers are approved.

The file has OMATrust's published trust-anchor shape::

    {"version": 1, "updatedAt": "...", "widgetOrigins": [],
     "chains": {"eip155:66238": {"name": ..., "easContract": "0x…",
                                 "schemas": {"key-binding": "0x…", ...},
                                 "priorSchemas": {"key-binding": ["0x…"], ...}}},
     "registries": [{"type": "approved-issuers",
                     "issuers": [{"address": "0x…", "label": ..., "schemas": ["controller-witness"]}]}]}

``priorSchemas`` is our addition (consumers of the published shape ignore unknown keys): UIDs of earlier versions of
a schema, which are **read** (attestations made under them still count) and **never written**. OMATrust schema UIDs
do not depend on the chain (``keccak256(schema, resolver, revocable)``), so a chain that the file does not list uses
the schemas of every listed chain. The built-in default is ``service/omatrust_trust_anchors.json``;
``OMATRUST_TRUST_ANCHORS`` names another file (read in ``service.wiring``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.domain import Reason
from service.errors import MalformedInput
from service.records import (  # noqa: F401 - the schema names are part of this module's vocabulary
    ANCHORED_SCHEMAS,
    CONTROLLER_WITNESS,
    KEY_BINDING,
    LINKED_IDENTIFIER,
    USER_REVIEW,
    USER_REVIEW_RESPONSE,
)

_UID = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True, slots=True)
class ApprovedIssuer:
    address: str  # lower-case
    label: str
    schemas: frozenset[str]


@dataclass(frozen=True, slots=True)
class ChainAnchors:
    caip2: str
    name: str
    eas_contract: str
    schemas: Mapping[str, str]  # schema name → current UID (lower-case)
    prior_schemas: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    version: int
    updated_at: str
    chains: Mapping[str, ChainAnchors]
    issuers: tuple[ApprovedIssuer, ...]

    def _chains_for(self, caip2: str | None) -> tuple[ChainAnchors, ...]:
        if caip2 is not None and caip2 in self.chains:
            return (self.chains[caip2],)
        return tuple(self.chains.values())  # UIDs are chain-independent (module docstring)

    def current_uid(self, *, name: str, chain: str | None = None) -> str | None:
        """The UID new attestations of ``name`` are written under (None: not anchored)."""
        for anchors in self._chains_for(chain):
            if name in anchors.schemas:
                return anchors.schemas[name]
        return None

    def readable_uids(self, *, name: str, chain: str | None = None) -> tuple[str, ...]:
        """Current and prior UIDs of ``name``: attestations under any of them are read."""
        out: list[str] = []
        for anchors in self._chains_for(chain):
            for uid in (anchors.schemas.get(name), *anchors.prior_schemas.get(name, ())):
                if uid is not None and uid not in out:
                    out.append(uid)
        return tuple(out)

    def schema_name(self, *, uid: str, chain: str | None = None) -> str | None:
        """Which anchored schema ``uid`` is a version of (None: not anchored)."""
        uid = uid.lower()
        for name in ANCHORED_SCHEMAS:
            if uid in self.readable_uids(name=name, chain=chain):
                return name
        return None

    def is_approved(self, *, address: str, schema: str) -> bool:
        """Is ``address`` an approved issuer of ``schema`` attestations (``approved-issuers`` registries)?"""
        wanted = address.lower()
        return any(i.address == wanted and schema in i.schemas for i in self.issuers)


def _fail(why: str) -> MalformedInput:
    return MalformedInput(Reason.BAD_FIELD_VALUE, f"trust anchors: {why}")


def _uid(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _UID.match(value):
        raise _fail(f"{where} is not a 32-byte hex UID")
    return value.lower()


def _chain(caip2: str, raw: Any) -> ChainAnchors:
    if not isinstance(raw, dict):
        raise _fail(f"chains[{caip2}] is not an object")
    schemas = raw.get("schemas", {})
    priors = raw.get("priorSchemas", {})
    if not isinstance(schemas, dict) or not isinstance(priors, dict):
        raise _fail(f"chains[{caip2}].schemas/priorSchemas must be objects")
    eas = raw.get("easContract", "")
    if not isinstance(eas, str) or not _ADDRESS.match(eas):
        raise _fail(f"chains[{caip2}].easContract is not an address")
    prior: dict[str, tuple[str, ...]] = {}
    for name, uids in priors.items():
        if not isinstance(uids, list):
            raise _fail(f"chains[{caip2}].priorSchemas[{name}] is not a list")
        prior[str(name)] = tuple(_uid(u, f"priorSchemas[{name}]") for u in uids)
    return ChainAnchors(
        caip2=caip2,
        name=str(raw.get("name", "")),
        eas_contract=eas,
        schemas={str(n): _uid(u, f"schemas[{n}]") for n, u in schemas.items()},
        prior_schemas=prior,
    )


def _issuers(registries: Any) -> tuple[ApprovedIssuer, ...]:
    if not isinstance(registries, list):
        raise _fail("registries is not a list")
    out: list[ApprovedIssuer] = []
    for registry in registries:
        if not isinstance(registry, dict) or registry.get("type") != "approved-issuers":
            continue  # other registry types say nothing about issuers
        for issuer in registry.get("issuers", []):
            address = issuer.get("address") if isinstance(issuer, dict) else None
            if not isinstance(address, str) or not _ADDRESS.match(address):
                raise _fail("an approved issuer has no valid address")
            schemas = issuer.get("schemas", [])
            if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
                raise _fail(f"issuer {address}: schemas must be a list of names")
            out.append(ApprovedIssuer(address.lower(), str(issuer.get("label", "")), frozenset(schemas)))
    return tuple(out)


def parse_trust_anchors(*, data: bytes | str) -> TrustAnchors:
    """Parse a trust-anchor file (module docstring).

    Raises:
        MalformedInput(BAD_FIELD_VALUE): not JSON, or not the trust-anchor shape.
    """
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(f"not JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("chains"), dict):
        raise _fail("expected an object with a chains object")
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise _fail("version is not an integer")
    chains = {str(caip2): _chain(str(caip2), value) for caip2, value in raw["chains"].items()}
    return TrustAnchors(
        version=version,
        updated_at=str(raw.get("updatedAt", "")),
        chains=chains,
        issuers=_issuers(raw.get("registries", [])),
    )
