"""Smoke test of `ib-api` 0.9.70 (PyPI name; it is IbPy, Troy Melhase's 2014 port of the Java API 9.70).

IbPy is Python 2 source (print statements) and speaks the protocol from before v100: no "API\\0" prefix, its
bare client version ("62\\0") first, then it waits for the server's. The simulator speaks v157..178 only,
so the most it can do is refuse such a client at once instead of leaving it waiting.
"""

from __future__ import annotations

import importlib
import socket
import time

from _common import WAIT, Checks, threaded_server

LEGACY_CLIENT_VERSION = b"62\0"  # IbPy's EClientSocket.CLIENT_VERSION, sent as its first bytes


def main(c: Checks) -> None:
    def imports() -> None:
        importlib.import_module("ib.ext.EClientSocket")

    c.run("client imports on Python 3", imports)
    with threaded_server() as server:

        def refused() -> None:
            with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as s:
                s.sendall(LEGACY_CLIENT_VERSION)
                t0 = time.monotonic()
                try:
                    data = s.recv(4096)
                except TimeoutError:
                    raise AssertionError(
                        f"no answer and no close within {WAIT} s: the client hangs"
                    ) from None
                assert data == b"", data
                assert time.monotonic() - t0 < 2, "closed, but late"

        c.run("pre-v100 handshake refused at once", refused)


if __name__ == "__main__":
    Checks().main(main)
