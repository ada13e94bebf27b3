"""Which IP addresses an outbound fetch may connect to (SSRF policy, PROTOCOLS.md §2). Pure."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes that carry an IPv4 address a gateway will connect to: NAT64 well-known and local-use prefixes.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
# Not globally reachable per the IANA registry but missed by some Python versions' ``is_global``.
_ALSO_REFUSED = (ipaddress.IPv4Network("192.0.0.0/24"),)
# What ``allow_local`` opens: loopback and site-private ranges, nothing else (never link-local/metadata).
_LOCAL = tuple(
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
)


def address_refusal(address: str, *, allow_local: bool = False) -> str | None:
    """Why ``address`` must not be connected to, or None when it may be.

    Refused: loopback, private (RFC 1918, ULA), link-local (incl. cloud metadata 169.254.169.254), multicast,
    reserved, unspecified, shared/CGNAT and anything else not globally routable. An IPv4-mapped IPv6 address
    (``::ffff:a.b.c.d``) is judged as the IPv4 address it is; 6to4, Teredo and NAT64 addresses must pass both as
    themselves and by the IPv4 address they embed. ``allow_local=True`` (insecure development hosts only) lets
    loopback and RFC 1918 / ULA addresses through.
    """
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return f"not an IP address: {address!r}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        inner = address_refusal(str(ip.ipv4_mapped), allow_local=allow_local)
        return f"{ip} maps to {inner}" if inner else None
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner = address_refusal(str(embedded), allow_local=allow_local)
        if inner:
            return f"{ip} embeds {inner}"
    if allow_local and any(ip.version == net.version and ip in net for net in _LOCAL):
        return None
    for label, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return f"{ip} is {label}"
    if not ip.is_global or any(ip.version == net.version and ip in net for net in _ALSO_REFUSED):
        return f"{ip} is not globally routable"
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client address the relay forwards to
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None
