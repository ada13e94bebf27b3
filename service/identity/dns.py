"""Controllers a domain publishes in DNS: TXT at ``_controllers.<domain>``, else the older ``_omatrust.<domain>``.

NXDOMAIN and NoAnswer are answers ("this domain lists no controllers"), cached like positive answers. A timeout,
SERVFAIL or a missing resolver configuration is ``DnsFailed`` (could not check) and is never cached.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Sequence

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from service.domain import ControllerRecord, Reason
from service.errors import DnsFailed, MalformedInput
from service.identity.cache import TtlCache
from service.identity.controllers import parse_controller_records
from service.lookup_limits import LookupLimiter

RECORD_PREFIXES = ("_controllers", "_omatrust")  # current name first, then the older deployments' name


class ControllerResolver:
    """``lookup`` the controller DIDs of a domain (dnspython; the system resolver unless ``nameservers`` given).

    ``nameservers``: ``"ip"`` or ``"ip:port"`` (IPv6 as ``"[::1]:5353"``). ``timeout`` bounds each of the (at most
    two) queries. Answers — including "no record" — are cached for ``ttl`` seconds.
    """

    def __init__(
        self,
        *,
        nameservers: Sequence[str] = (),
        timeout: float = 3.0,
        ttl: float = 300,
        clock: Callable[[], float] = time.time,
        limiter: LookupLimiter | None = None,
    ) -> None:
        self._limiter = limiter
        self._nameservers = [parse_nameserver(ns) for ns in nameservers]  # bad config fails at construction
        self._timeout = timeout
        self._resolver: dns.resolver.Resolver | None = None
        self._resolver_lock = threading.Lock()
        self._cache: TtlCache[str, ControllerRecord | None] = TtlCache(ttl=ttl, clock=clock)

    def lookup(self, *, domain: str) -> ControllerRecord | None:
        """Controllers of ``domain`` (a hostname; a ``:port`` suffix is ignored), or None when neither name has a
        ``v=1`` TXT record.

        Raises:
            DnsFailed: DNS_FAILED (timeout, SERVFAIL/REFUSED from every server, no resolver configuration).
            LookupSaturated: LOOKUP_SATURATED, too many look-ups in flight (with a ``limiter``).
            MalformedInput: BAD_FIELD_VALUE (not a valid domain name).
        """
        host = domain.strip().lower().rstrip(".")
        if host.startswith("[") or host.count(":") == 1:  # "host:port" → host
            host = host.rsplit(":", 1)[0].strip("[]")
        if not host:
            raise MalformedInput(Reason.BAD_FIELD_VALUE, f"not a domain: {domain!r}")
        return self._cache.get_or_load(host, lambda: self._limited_query(host))

    def _limited_query(self, host: str) -> ControllerRecord | None:
        if self._limiter is None:
            return self._query(host)
        with self._limiter.slot(host=host, what="DNS look-up"):
            return self._query(host)

    def forget(self) -> None:
        self._cache.clear()

    def _query(self, host: str) -> ControllerRecord | None:
        for prefix in RECORD_PREFIXES:
            name = f"{prefix}.{host}"
            texts = self._txt(name)
            controllers = parse_controller_records(records=texts) if texts else None
            if controllers is not None:
                return ControllerRecord(domain=host, record_name=name, controllers=controllers)
        return None

    def _txt(self, name: str) -> list[str]:
        """TXT records at ``name``, each record's character-strings joined; [] for NXDOMAIN/NoAnswer."""
        try:
            qname = dns.name.from_text(name)  # absolute: no search-domain expansion
        except (dns.exception.DNSException, ValueError) as exc:
            raise MalformedInput(Reason.BAD_FIELD_VALUE, f"not a domain name: {name!r}") from exc
        try:
            answer = self._get_resolver().resolve(qname, dns.rdatatype.TXT, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout as exc:
            raise DnsFailed(Reason.DNS_FAILED, f"{name}: timed out") from exc
        except (dns.exception.DNSException, OSError) as exc:  # NoNameservers (SERVFAIL/REFUSED), no configuration…
            raise DnsFailed(Reason.DNS_FAILED, f"{name}: {type(exc).__name__}") from exc
        return [b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in answer]

    def _get_resolver(self) -> dns.resolver.Resolver:
        # Built on first use, not at construction: the system configuration is read only when actually needed.
        with self._resolver_lock:
            if self._resolver is None:
                if self._nameservers:
                    resolver = dns.resolver.Resolver(configure=False)
                    resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in self._nameservers]
                else:
                    resolver = dns.resolver.Resolver()  # raises NoResolverConfiguration (a DNSException)
                resolver.timeout = self._timeout
                resolver.lifetime = self._timeout
                self._resolver = resolver
            return self._resolver


def parse_nameserver(value: str) -> tuple[str, int]:
    """``"1.2.3.4"``, ``"1.2.3.4:5353"``, ``"::1"``, ``"[::1]:5353"`` → (ip, port).

    Raises:
        ValueError: not an IP address (with an optional port).
    """
    text = value.strip()
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest.removeprefix(":"))
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    else:
        host = text
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(f"bad nameserver port in {value!r}")
    return host, port
