"""satgw: a BeiDou-style satellite short-message gateway."""
