"""Pure codecs for satgw: no I/O, no asyncio, no Redis. Each module is one wire format."""
