-- Store a batch of fragments, each in the partial-message hash of its (link, message ref).
-- KEYS: one partial-message key per fragment (a key may repeat).
-- ARGV[1]: how long a partial message outlives its latest fragment, in milliseconds;
--   then 3 per fragment: its index, the message's total, the chunk.
-- A hash holds 'n' (the total) and one field per index held. A fragment whose total differs
-- from 'n' belongs to a newer message under a reused ref: the stale partial is dropped first.
-- Returns per fragment: an empty array while its message is incomplete, else every chunk in index order.
local ttl = ARGV[1]
local out = {}
for k = 1, #KEYS do
  local key, index, total, chunk = KEYS[k], ARGV[3 * k - 1], ARGV[3 * k], ARGV[3 * k + 1]
  local held = redis.call('HGET', key, 'n')
  if held and held ~= total then
    redis.call('DEL', key)
  end
  redis.call('HSET', key, 'n', total, index, chunk)
  redis.call('PEXPIRE', key, ttl)
  local count = redis.call('HLEN', key) - 1
  if count == tonumber(total) then
    local fields = {}
    for i = 0, count - 1 do
      fields[i + 1] = tostring(i)
    end
    out[k] = redis.call('HMGET', key, unpack(fields))
  else
    out[k] = {}
  end
end
return out
