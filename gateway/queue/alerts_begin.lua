-- Start one delivery attempt: count it durably before the request goes out.
-- KEYS[1] the endpoint's stream, KEYS[2] its attempts hash; ARGV[1] group, ARGV[2] consumer, ARGV[3] stream id.
-- Returns the number of this attempt, or -1 when the consumer no longer holds the delivery
-- (another process reclaimed it, or it is settled): then the caller must leave it alone.
local group, consumer, id = ARGV[1], ARGV[2], ARGV[3]
local held = redis.call('XPENDING', KEYS[1], group, id, id, 1)
if #held == 0 or held[1][2] ~= consumer then
  return -1
end
-- Claiming it again resets its idle time, so no other process reclaims a delivery under way.
redis.call('XCLAIM', KEYS[1], group, consumer, 0, id, 'JUSTID')
return redis.call('HINCRBY', KEYS[2], id, 1)
