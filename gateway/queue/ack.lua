-- Acknowledge taken entries and delete them from their class streams, atomically.
-- KEYS the class streams, highest first; ARGV[1] group, then per class: class index, n, n stream ids.
-- One script call packs and parses far cheaper in redis-py than MULTI, XACK, XDEL per class, EXEC.
local group, k = ARGV[1], 2
while k <= #ARGV do
  local stream, last = KEYS[tonumber(ARGV[k]) + 1], k + 1 + tonumber(ARGV[k + 1])
  -- unpack() puts every id on the Lua stack, which holds some 8000 values
  for first = k + 2, last, 1000 do
    local upto = math.min(first + 999, last)
    redis.call('XACK', stream, group, unpack(ARGV, first, upto))
    redis.call('XDEL', stream, unpack(ARGV, first, upto))
  end
  k = last + 1
end
return 0
