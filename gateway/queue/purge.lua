-- Drop every dead letter; returns how many there were.
local n = redis.call('XLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
