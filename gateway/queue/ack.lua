-- Acknowledge taken entries and delete them from their class streams, atomically.
-- KEYS the class streams, highest first; ARGV[1] group, ARGV[2], ARGV[3] the trace prefix and TTL
-- (common.lua), ARGV[4] the hop line to append to each entry's trace ('' for none), then per class:
-- class index, n, n stream ids, the n entries' message ids.
-- One script call packs and parses far cheaper in redis-py than MULTI, XACK, XDEL per class, EXEC.
local group, line, k = ARGV[1], ARGV[4] .. '\n', 5
trace_init(ARGV[2], ARGV[4] ~= '' and ARGV[3] or 0, '')
while k <= #ARGV do
  local stream, n = KEYS[tonumber(ARGV[k]) + 1], tonumber(ARGV[k + 1])
  local last = k + 1 + n
  -- unpack() puts every id on the Lua stack, which holds some 8000 values
  for first = k + 2, last, 1000 do
    local upto = math.min(first + 999, last)
    redis.call('XACK', stream, group, unpack(ARGV, first, upto))
    redis.call('XDEL', stream, unpack(ARGV, first, upto))
  end
  if trace_ttl > 0 then
    for j = last + 1, last + n do
      hop(ARGV[j], line)
    end
  end
  k = last + n + 1
end
return 0
