"""The UI's own worker: a thread of the server process that runs the job queue, so "run the next
step" on the page just works. It is the same `Worker` as `lorastrap worker` (same queue, same
claiming), with a one-second heartbeat so progress and cancel reach the page quickly.
`lorastrap ui --no-worker` leaves the queue to a `lorastrap worker` elsewhere (a GPU machine).
"""

from __future__ import annotations

import dataclasses
import logging
import threading

from lorastrap.workspace import Workspace

log = logging.getLogger("lorastrap.ui")
UI_BEAT_S = 1.0


class WorkerThread:
    def __init__(self, ws: Workspace) -> None:
        from lorastrap.jobs.worker import Worker, default_worker_name

        settings = dataclasses.replace(ws.config.watch, heartbeat_s=min(ws.config.watch.heartbeat_s, UI_BEAT_S),
                                       poll_s=min(ws.config.watch.poll_s, UI_BEAT_S))
        self.reg = ws.open_registry()
        self.worker = Worker(ws, self.reg, name=default_worker_name(":ui"), settings=settings,
                             emit=log.info, show_progress=False)
        self.thread = threading.Thread(target=self._run, name="lorastrap-ui-worker", daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        except Exception:  # the page shows the job as failed/stale; the server keeps serving
            log.exception("the UI's worker stopped")

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self.worker.wake()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after checkpointing a running job (it goes back to the queue and resumes later)."""
        self.worker.request_stop("the UI server stopped")
        self.thread.join(timeout)
        self.reg.close()
