-- Put one dead letter back at the tail of its class stream.
-- KEYS[1..n-1] the class streams, highest first; KEYS[n] the dead-letter stream; ARGV[1] dead id,
-- ARGV[2..4] what trace_init takes (common.lua). The message's trace gets a requeued hop.
-- Returns 1 if it was moved, 0 if there is no such dead letter.
local dead = KEYS[#KEYS]
trace_init(ARGV[2], ARGV[3], ARGV[4])
local found = redis.call('XRANGE', dead, ARGV[1], ARGV[1])[1]
if not found then
  return 0
end
local fields, keep, class = found[2], {}, nil
for k = 1, #fields, 2 do
  local name = fields[k]
  if name == 'p' then
    class = tonumber(fields[k + 1])
  elseif name ~= 'reason' and name ~= 'sid' then
    keep[#keep + 1] = name
    keep[#keep + 1] = fields[k + 1]
  end
end
if not class or class < 0 or class + 1 >= #KEYS then
  return redis.error_reply('dead letter ' .. ARGV[1] .. ' has no valid class')
end
local sid = redis.call('XADD', KEYS[class + 1], '*', unpack(keep))
redis.call('XDEL', dead, ARGV[1])
local message = field_of(fields, 'id')
if message then
  hop(message, 'requeued ' .. trace_now .. ' class=' .. class .. ' sid=' .. sid .. '\n')
end
return 1
