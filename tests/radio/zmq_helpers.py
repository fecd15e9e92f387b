"""Free 127.0.0.1 TCP endpoints for ZMQ tests."""

import socket


def free_endpoint() -> str:
    """``tcp://127.0.0.1:PORT`` with a port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"
