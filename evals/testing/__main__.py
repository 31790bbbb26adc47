"""Serve the fake OpenAI-compatible server until interrupted: ``python -m evals.testing``.

Prints the base URL (for ``api_base``) on the first line of stdout, so a benchmark can start it
in its own process and keep its CPU apart from the client's.
"""

from __future__ import annotations

import argparse
import signal
import threading

from evals.testing._openai_server import FakeOpenAIServer


def main() -> None:
    """Parse ``--latency`` and serve."""
    parser = argparse.ArgumentParser(prog="python -m evals.testing", description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeOpenAIServer(latency_s=args.latency) as server:
        print(server.url, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
