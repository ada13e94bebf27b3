"""Who may sign for a service: DID resolution (did:web fetched, did:key / did:jwk decoded) and DNS controllers.

Modules: ``fetcher`` (SSRF-safe bounded HTTPS GET behind the ``Fetcher`` protocol), ``addresses`` (which IPs may be
dialled), ``documents`` / ``didkey`` / ``keys`` (pure parsing), ``resolver`` (``DidResolver``, TTL cache),
``controllers`` (pure TXT parsing) and ``dns`` (``ControllerResolver``), ``cache`` (TTL + single flight).
Import the module you need; this package imports nothing so that importing it stays cheap.
"""
