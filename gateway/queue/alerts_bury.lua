-- Move one delivery to the alert dead-letter stream, with why and how often it was tried.
-- KEYS[1] the endpoint's stream, KEYS[2] its attempts hash, KEYS[3] the dead-letter stream.
-- ARGV[1] group, ARGV[2] stream id, ARGV[3] endpoint, ARGV[4] reason, ARGV[5] HTTP status or '', ARGV[6] error.
-- Returns 1 if the entry was there to move, else 0 (it is acknowledged either way).
local group, id = ARGV[1], ARGV[2]
local found = redis.call('XRANGE', KEYS[1], id, id)[1]
if found then
  local attempts = redis.call('HGET', KEYS[2], id) or '0'
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[3], 'reason', ARGV[4], 'status', ARGV[5], 'n', attempts,
    'err', ARGV[6], 'sid', id, unpack(found[2]))
end
redis.call('XACK', KEYS[1], group, id)
redis.call('XDEL', KEYS[1], id)
redis.call('HDEL', KEYS[2], id, id .. ':due', id .. ':err')
return found and 1 or 0
