"""What a service says about itself in did.json (name, link, logo), read defensively: remote logos, script URLs,
oversized or malformed values are ignored, never an error."""

from __future__ import annotations

import base64
import json

from service.identity.profile import MAX_LOGO_CHARS, MAX_NAME_CHARS, ServiceProfile, read_profile

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


def raw(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_top_level_name_logo_and_linked_domain() -> None:
    doc = {
        "id": "did:web:a.example", "name": "  Weather\n API ", "logo": PNG,
        "service": [
            {"id": "#x", "type": "X402", "serviceEndpoint": "https://a.example/pay"},
            {"id": "#site", "type": "LinkedDomains", "serviceEndpoint": {"origins": ["https://www.a.example"]}},
        ],
    }  # fmt: skip
    assert read_profile(raw=raw(doc)) == ServiceProfile(name="Weather API", url="https://www.a.example", logo=PNG)


def test_falls_back_to_service_entries() -> None:
    doc = {
        "id": "did:web:a.example",
        "service": [{"type": "X", "name": "From service", "serviceEndpoint": ["http://a.example/"]}],
    }
    assert read_profile(raw=raw(doc)) == ServiceProfile(name="From service", url="http://a.example/")


def test_unsafe_or_oversized_values_are_ignored() -> None:
    doc = {
        "id": "did:web:a.example",
        "name": "x" * 500,
        "logo": "https://cdn.example/logo.png",
        "service": [{"type": "LinkedDomains", "serviceEndpoint": "javascript:alert(1)"},
                    {"logo": "data:text/html;base64,PHNjcmlwdD4=", "serviceEndpoint": "https://a.example/\"><x"}],
    }  # fmt: skip
    profile = read_profile(raw=raw(doc))
    assert profile.name == "x" * MAX_NAME_CHARS
    assert (profile.url, profile.logo) == (None, None)
    big = "data:image/png;base64," + "A" * MAX_LOGO_CHARS
    assert read_profile(raw=raw({"logo": big})).logo is None


def test_not_a_document() -> None:
    for data in (b"", b"[]", b"\xff", b"{" * 10_000, b'"x"'):
        assert read_profile(raw=data) == ServiceProfile()
