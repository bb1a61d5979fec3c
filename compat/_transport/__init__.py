"""The transport: everything below the client API.

`_engine` sends one request hop: a slot from `_pool` (queued and reuse signals), a new
connection from `_opener` when none is idle (create, DNS via `_dns`, TLS signals), then the
HTTP/1.1 exchange of `_connection` on httptools (headers and chunk signals) over a stream of
`_backends` (an asyncio protocol, or the socket itself on trio). `_decoders` inflates bodies in
bounded pieces; `_httpx` adapts the engine to httpx for `traced_client`; `_mocked` is the
detour taken while respx has patched httpx or httpcore.
"""
