"""A slow evaluation process for the deadline tests: it waits before each job as a period
evaluation of a large workspace would work. Imported by name in the child (spawn)."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from typing import Any

SECONDS = 5.0


def slow_child(connection: Connection, store_url: str, catalog: Any) -> None:
    from auditor.serve.evaluation import child_main

    class Slow:
        def recv(self) -> Any:
            job = connection.recv()
            time.sleep(SECONDS)
            return job

        def send_bytes(self, data: bytes) -> None:
            connection.send_bytes(data)

    child_main(Slow(), store_url, catalog)  # type: ignore[arg-type]
