-- Take up to ARGV[3] new entries for one consumer, highest class first (strict priority).
-- KEYS the class streams, highest first; ARGV[1] group, ARGV[2] consumer, ARGV[3] count,
-- ARGV[4] '1' to report, when nothing is waiting, the group's last-delivered id per stream;
-- ARGV[5], ARGV[6] the trace prefix and TTL (common.lua), ARGV[7] the hop line for each entry taken.
-- Returns {{class index, id, fields}...}, {last-delivered ids}.

local function last_delivered(key, group)
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local fields = {}
    for k = 1, #info, 2 do
      fields[info[k]] = info[k + 1]
    end
    if fields['name'] == group then
      return fields['last-delivered-id']
    end
  end
  return '0-0'
end

local group, consumer, want = ARGV[1], ARGV[2], tonumber(ARGV[3])
local line = ARGV[7] .. '\n'
trace_init(ARGV[5], ARGV[7] ~= '' and ARGV[6] or 0, '')
local out = {}
for i, key in ipairs(KEYS) do
  if want <= 0 then
    break
  end
  local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', want, 'STREAMS', key, '>')
  if reply then
    for _, entry in ipairs(reply[1][2]) do
      out[#out + 1] = {i - 1, entry[1], entry[2]}
      local message = trace_ttl > 0 and field_of(entry[2], 'id')
      if message then
        hop(message, line)
      end
    end
    want = want - #reply[1][2]
  end
end
local ids = {}
if #out == 0 and ARGV[4] == '1' then
  for i, key in ipairs(KEYS) do
    ids[i] = last_delivered(key, group)
  end
end
return {out, ids}
