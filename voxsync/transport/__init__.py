"""Transports shared by providers: the threaded websocket-client connection."""

from voxsync.transport.websocket import WebSocketTransport

__all__ = ["WebSocketTransport"]
