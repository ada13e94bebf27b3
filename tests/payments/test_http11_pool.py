"""``service.http11.ConnectionPool`` reuses only idle connections that can still carry a request: one the node closed
while idle is dropped before use (and a request that meets one anyway is sent again on a *new* connection, never
on another idle one), and one that holds bytes past its answer is never pooled."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from service.http11 import ConnectionPool
from tests.support.http_wire import read_request

BODY = b'{"jsonrpc":"2.0","id":1,"result":"0x1"}'


@contextmanager
def node(
    *, close_after_answer: bool, trailing: bytes = b"", hold: threading.Event | None = None
) -> Iterator[tuple[str, list[int], threading.Semaphore]]:
    """A loopback node answering each request with ``BODY`` (plus ``trailing`` bytes past its Content-Length);
    with ``close_after_answer`` it closes the connection after answering (once ``hold`` is set, when given), without
    saying so. Yields the URL, the list of connection numbers per request, and a semaphore released each time a
    connection is closed."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[int] = []
    closed = threading.Semaphore(0)

    def serve(conn: socket.socket, number: int) -> None:
        with conn:
            buf = b""
            while True:
                got = read_request(conn, buf)
                if got is None:
                    return
                buf = got[2]
                seen.append(number)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s%s" % (len(BODY), BODY, trailing))
                if close_after_answer:
                    if hold is not None:
                        hold.wait(timeout=10)
                    break
        closed.release()

    def accept() -> None:
        number = 0
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            number += 1
            threading.Thread(target=serve, args=(conn, number), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/", seen, closed
    finally:
        listener.close()


def _three_idle_then_closed(pool: ConnectionPool, hold: threading.Event, closed: threading.Semaphore) -> None:
    """Three connections answered and pooled while the node keeps them open, then closed by the node."""
    sent = [(pool.send(r), r) for r in [pool.request(b"{}") for _ in range(3)]]  # three in flight at once
    for (conn, reused), request in sent:
        assert pool.receive(conn, reused=reused, request=request).body == BODY
    assert len(pool._idle) == 3
    hold.set()
    for _ in range(3):
        assert closed.acquire(timeout=5)  # the node has closed all three


def test_idle_connections_the_node_closed_are_not_reused() -> None:
    hold = threading.Event()
    with node(close_after_answer=True, hold=hold) as (url, seen, closed):
        pool = ConnectionPool(url=url, timeout=5)
        _three_idle_then_closed(pool, hold, closed)
        assert pool.post(b"{}").body == BODY  # no error: a fresh connection
        assert (sorted(seen), seen[-1]) == ([1, 2, 3, 4], 4)
        pool.close()


def test_a_stale_reused_connection_is_retried_on_a_new_one_not_another_idle_one() -> None:
    hold = threading.Event()
    with node(close_after_answer=True, hold=hold) as (url, seen, closed):
        pool = ConnectionPool(url=url, timeout=5)
        _three_idle_then_closed(pool, hold, closed)
        stale = pool._idle.pop()
        request = pool.request(b"{}")
        stale.send(request)  # as if the staleness went unseen before sending
        assert pool.receive(stale, reused=True, request=request).body == BODY
        assert (sorted(seen), seen[-1]) == ([1, 2, 3, 4], 4)  # the retry went out on a new, fourth connection
        pool.close()


def test_a_connection_with_bytes_past_its_answer_is_not_pooled() -> None:
    with node(close_after_answer=False, trailing=b"HTTP/1.1 200 OK\r\n") as (url, seen, _):
        pool = ConnectionPool(url=url, timeout=5)
        assert pool.post(b"{}").body == BODY
        assert pool.post(b"{}").body == BODY  # not the leftover bytes taken as the next answer
        assert seen == [1, 2]  # each on its own connection
        pool.close()
