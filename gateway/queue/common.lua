-- Helpers prepended to every satgw queue script.

-- Message traces (gateway/queue/trace.py): one string per message, `prefix .. message id`, holding one
-- line per hop, `<event> <unix time> k=v ...`. A script that writes hops first calls trace_init with the
-- prefix, the time-to-live in seconds (0: write nothing) and the time to stamp its hops with. The keys
-- share the queue keys' hash tag, so they live in the same Cluster slot as every key a script declares.
local trace_prefix, trace_ttl, trace_now = '', 0, ''

local function trace_init(prefix, ttl, now)
  trace_prefix, trace_ttl, trace_now = prefix, tonumber(ttl) or 0, now
end

-- Append one hop line (with its newline) to a message's trace. APPEND keeps a key's expiry; a key it
-- created (the reply is the line's own length) gets one, so no trace key is ever left without a TTL.
local function hop(id, line)
  if trace_ttl > 0 then
    local key = trace_prefix .. id
    if redis.call('APPEND', key, line) == #line then
      redis.call('EXPIRE', key, trace_ttl)
    end
  end
end

-- The first hops of a message: usually nothing is traced yet, so one SET ... EX NX does it all.
local function first_hop(id, line)
  if trace_ttl > 0 and not redis.call('SET', trace_prefix .. id, line, 'EX', trace_ttl, 'NX') then
    hop(id, line)
  end
end

-- A value as a hop line carries it: '%', space and control bytes become %XX (trace.py undoes it).
local function esc(value)
  return (string.gsub(value, '[%%%c ]', function(c)
    return string.format('%%%02X', string.byte(c))
  end))
end

-- The message id among an entry's flat {field, value, ...} list, or nil.
local function field_of(fields, name)
  for k = 1, #fields, 2 do
    if fields[k] == name then
      return fields[k + 1]
    end
  end
  return nil
end

-- Move one queued entry to the dead-letter stream, then forget it in its class stream.
local function bury(stream, dead, group, id, reason, priority)
  local found = redis.call('XRANGE', stream, id, id)[1]
  if found then
    redis.call('XADD', dead, '*', 'reason', reason, 'p', priority, 'sid', id, unpack(found[2]))
    local message = field_of(found[2], 'id')
    if message then
      hop(message, 'dead ' .. trace_now .. ' reason=' .. esc(reason) .. '\n')
    end
  end
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
  return found and 1 or 0
end
