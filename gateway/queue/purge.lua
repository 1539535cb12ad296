-- Drop every dead letter; returns how many there were.
-- ARGV[1..3] what trace_init takes (common.lua): each dropped message's trace gets a purged hop.
trace_init(ARGV[1], ARGV[2], ARGV[3])
local n = redis.call('XLEN', KEYS[1])
if trace_ttl > 0 then
  local line, from = 'purged ' .. trace_now .. '\n', '-'
  while true do
    local chunk = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 1000)
    for _, entry in ipairs(chunk) do
      local message = field_of(entry[2], 'id')
      if message then
        hop(message, line)
      end
    end
    if #chunk < 1000 then
      break
    end
    from = '(' .. chunk[#chunk][1]
  end
end
redis.call('DEL', KEYS[1])
return n
