"""A job for the worker tests: it writes one line per execution, so a test can count executions."""

import os
import time

from h2h_core.jobs import task


@task()
def probe_record(number: int, path: str) -> None:
    time.sleep(0.01)  # long enough for two workers to overlap
    with open(path, "a", encoding="utf-8") as lines:
        lines.write(f"{number} {os.getpid()}\n")
