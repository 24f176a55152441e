"""An unreachable database gives 503, and the service recovers by itself when it comes back.

The service reaches PostgreSQL through a TCP relay on loopback that the test cuts and restores; the
server process is never restarted.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from tests.serving.conftest import make_entities, store_run

pytestmark = pytest.mark.postgres


class Relay:
    """Forwards loopback connections to ``target``; ``cut()`` drops them all and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # shutdown wakes the accepting thread; close alone does not
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()


def test_database_outage_gives_503_and_the_service_recovers(db_url, engine, tokens, serve):
    if not db_url.startswith("postgresql"):
        pytest.skip("the relay fronts a PostgreSQL server")
    entities = make_entities(20, seed=6)
    store_run(engine, entities)
    url = make_url(db_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    relay.start()
    live = serve(database_url=url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False))
    path = f"/v1/entities/{entities.entity_id[0]}/risk"
    with live.client(tokens["supervisor"], timeout=30) as client:
        assert client.get(path).status_code == 200
        relay.cut()
        response = client.get(path)
        assert response.status_code == 503
        assert response.json()["detail"] == "the database is unavailable; retry shortly"
        assert client.get("/health").json()["database"] == "unavailable"
        relay.start()  # the database is back, on the same port
        deadline = time.monotonic() + 20
        while (status := client.get(path).status_code) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200
        assert client.get("/health").json()["database"] == "ok"
