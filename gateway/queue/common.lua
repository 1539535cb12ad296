-- Helpers prepended to every satgw queue script.

-- Move one queued entry to the dead-letter stream, then forget it in its class stream.
local function bury(stream, dead, group, id, reason, priority)
  local found = redis.call('XRANGE', stream, id, id)[1]
  if found then
    redis.call('XADD', dead, '*', 'reason', reason, 'p', priority, 'sid', id, unpack(found[2]))
  end
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
  return found and 1 or 0
end
