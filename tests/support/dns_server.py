"""A real DNS server on 127.0.0.1 (dnslib, UDP, free port) whose answers tests set at runtime.

    with LoopbackDns() as dns:
        dns.set_txt("_controllers.example.com", "v=1;controller=did:web:example.com")
        dns.set_txt("_omatrust.example.com", ["v=1;controller=", "did:pkh:eip155:1:0xabc"])  # one multi-string record
        resolver = ControllerResolver(nameservers=[dns.nameserver], timeout=1)

Unknown names answer NXDOMAIN. ``set_empty`` gives NOERROR with no TXT (NoAnswer), ``set_servfail`` SERVFAIL,
``hang = True`` (or ``set_hang(name)``) drops queries so clients time out. ``queries`` records every question
(name without trailing dot, lower-case; type name), so tests can assert how often the network was used.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from dnslib import QTYPE, RCODE, RR, TXT, DNSError, DNSRecord
from dnslib.server import DNSLogger, DNSServer

TxtRecord = str | bytes | Sequence[str | bytes]  # one record: a string, or its list of character-strings


class _Zone:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.txt: dict[str, list[tuple[list[bytes], int]]] = {}
        self.empty: set[str] = set()
        self.servfail: set[str] = set()
        self.hang_names: set[str] = set()
        self.hang_all = False
        self.queries: list[tuple[str, str]] = []
        self.released = threading.Event()

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE.get(request.q.qtype)
        with self.lock:
            self.queries.append((qname, str(qtype)))
            hang = self.hang_all or qname in self.hang_names
            servfail = qname in self.servfail
            records = list(self.txt.get(qname, ()))
            exists = bool(records) or qname in self.empty
        if hang:
            self.released.wait(30)
            raise DNSError("dropped on purpose")  # dnslib logs (quietly) and sends nothing
        reply = request.reply()
        if servfail:
            reply.header.rcode = RCODE.SERVFAIL
        elif not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for strings, ttl in records:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(strings), ttl=ttl))
        return reply


class LoopbackDns:
    """Context manager around a dnslib ``DNSServer`` bound to 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self._zone = _Zone()
        quiet = DNSLogger(log="-request,-reply,-truncated,-error", logf=lambda _msg: None)
        self._server = DNSServer(self._zone, address="127.0.0.1", port=0, logger=quiet)
        self.port: int = self._server.server.server_address[1]
        self.nameserver = f"127.0.0.1:{self.port}"
        self._started = False
        self._thread: threading.Thread | None = None

    def start(self) -> LoopbackDns:
        # Our own thread (not dnslib's start_thread) for a short poll interval: stopping then takes ~50 ms, not 0.5 s.
        self._thread = threading.Thread(
            target=self._server.server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-dns", daemon=True
        )
        self._thread.start()
        self._started = True
        return self

    def stop(self) -> None:
        self._zone.released.set()
        if self._started:
            self._server.server.shutdown()
            if self._thread is not None:
                self._thread.join(5)
        self._server.server.server_close()

    def __enter__(self) -> LoopbackDns:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    # -- zone content
    def set_txt(self, name: str, *records: TxtRecord, ttl: int = 60) -> None:
        """Replace the TXT records at ``name``: each argument is one record (a string or a list of strings)."""
        encoded = [(_strings(record), ttl) for record in records]
        with self._zone.lock:
            self._zone.txt[_key(name)] = encoded
            self._zone.servfail.discard(_key(name))

    def set_empty(self, name: str) -> None:
        """``name`` exists but has no TXT record (NOERROR, empty answer → NoAnswer)."""
        with self._zone.lock:
            self._zone.txt.pop(_key(name), None)
            self._zone.empty.add(_key(name))

    def set_nxdomain(self, name: str) -> None:
        with self._zone.lock:
            self._zone.txt.pop(_key(name), None)
            self._zone.empty.discard(_key(name))
            self._zone.servfail.discard(_key(name))

    def set_servfail(self, name: str) -> None:
        with self._zone.lock:
            self._zone.servfail.add(_key(name))

    def set_hang(self, name: str) -> None:
        """Queries for ``name`` are never answered."""
        with self._zone.lock:
            self._zone.hang_names.add(_key(name))

    @property
    def hang(self) -> bool:
        return self._zone.hang_all

    @hang.setter
    def hang(self, value: bool) -> None:
        """Every query is dropped (the server looks dead)."""
        with self._zone.lock:
            self._zone.hang_all = value

    def clear(self) -> None:
        with self._zone.lock:
            self._zone.txt.clear()
            self._zone.empty.clear()
            self._zone.servfail.clear()
            self._zone.hang_names.clear()
            self._zone.hang_all = False
            self._zone.queries.clear()

    @property
    def queries(self) -> list[tuple[str, str]]:
        with self._zone.lock:
            return list(self._zone.queries)

    def queries_for(self, name: str) -> int:
        return sum(1 for q, _ in self.queries if q == _key(name))


def _key(name: str) -> str:
    return name.rstrip(".").lower()


def _strings(record: TxtRecord) -> list[bytes]:
    parts = [record] if isinstance(record, str | bytes) else list(record)
    return [p.encode("utf-8") if isinstance(p, str) else p for p in parts]
