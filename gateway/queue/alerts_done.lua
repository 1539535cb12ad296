-- Settle one delivery for good: acknowledge it, delete it and forget its attempts.
-- KEYS[1] the endpoint's stream, KEYS[2] its attempts hash; ARGV[1] group, ARGV[2] stream id.
local id = ARGV[2]
redis.call('XACK', KEYS[1], ARGV[1], id)
redis.call('XDEL', KEYS[1], id)
redis.call('HDEL', KEYS[2], id, id .. ':due', id .. ':err')
return 0
