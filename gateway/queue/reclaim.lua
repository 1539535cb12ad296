-- Reclaim entries whose consumer went quiet: bury the over-delivered, claim the rest.
-- KEYS[1..n-1] the class streams, highest first; KEYS[n] the dead-letter stream
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle ms, ARGV[4] count, ARGV[5] max deliveries,
-- ARGV[6..8] what trace_init takes (common.lua), ARGV[9] the hop line of each entry claimed.
-- Returns {{class index, id, fields}...}.
local group, consumer, idle = ARGV[1], ARGV[2], ARGV[3]
local left, most = tonumber(ARGV[4]), tonumber(ARGV[5])
local dead, line = KEYS[#KEYS], ARGV[9] .. '\n'
trace_init(ARGV[6], ARGV[7], ARGV[8])
local out = {}
for i = 1, #KEYS - 1 do
  if left <= 0 then
    break
  end
  local claim = {}
  for _, p in ipairs(redis.call('XPENDING', KEYS[i], group, 'IDLE', idle, '-', '+', left)) do
    -- p = {id, consumer, idle ms, deliveries}; one more delivery would exceed the limit
    if p[4] >= most then
      bury(KEYS[i], dead, group, p[1], 'max_deliveries', i - 1)
    else
      claim[#claim + 1] = p[1]
    end
    left = left - 1
  end
  if #claim > 0 then
    for _, entry in ipairs(redis.call('XCLAIM', KEYS[i], group, consumer, idle, unpack(claim))) do
      if entry[2] then
        out[#out + 1] = {i - 1, entry[1], entry[2]}
        local message = trace_ttl > 0 and field_of(entry[2], 'id')
        if message then
          hop(message, line)
        end
      else
        redis.call('XACK', KEYS[i], group, entry[1])
      end
    end
  end
end
return out
