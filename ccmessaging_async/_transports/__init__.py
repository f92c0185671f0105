"""How one createcall exchange reaches the wire: httpx's transports, or a faster one.

A transport that implements :class:`~.base.ExchangeTransport` is used directly for
createcall (no httpx request or response objects); any other httpx transport goes through
the session's client.
"""
