"""``python -m mxstandin --host 127.0.0.1 --port 0``

Starts the MX Merchant stand-in, prints ``{"base_url": ..., "control_url": ...}`` as one JSON
line on stdout, and serves until SIGTERM or SIGINT (then exits 0).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from mxstandin.server import start_standin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mxstandin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=None, help="seed for generated data/faults")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every API call")
    parser.add_argument(
        "--id-offset",
        type=int,
        default=0,
        help="added to every id handed out (runs against one database never repeat an id)",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    handle = start_standin(
        args.port, args.host, seed=args.seed, latency_ms=args.latency_ms, id_offset=args.id_offset
    )
    print(
        json.dumps(
            {"base_url": handle.base_url, "control_url": handle.control_url, "port": handle.port}
        ),
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
