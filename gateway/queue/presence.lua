-- Merge one flush of terminal presence from one gateway process (gateway/queue/presence.py).
-- KEYS: seen (zset terminal -> last seen), positions (hash terminal -> fix JSON), geo (GEO set),
--       polar (set of terminals whose fix is beyond GEO's latitude range), counts (hash terminal -> JSON)
-- ARGV, 8 per terminal: terminal, last seen or '', fix JSON or '', fix time, lon, lat,
--       '1' if GEO can hold the fix, counts JSON or ''
-- Last seen and the fix only move forward, so processes may flush in any order.
local seen, positions, geo, polar, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

-- A corrupt value (written by hand, say) is replaced rather than failing every later flush.
local function decoded(raw)
  if not raw then
    return nil
  end
  local ok, value = pcall(cjson.decode, raw)
  if ok and type(value) == 'table' then
    return value
  end
  return nil
end

local function place(terminal, fix, at, lon, lat, mappable)
  local old = decoded(redis.call('HGET', positions, terminal))
  if old and tonumber(old.at) and tonumber(old.at) >= tonumber(at) then
    return
  end
  redis.call('HSET', positions, terminal, fix)
  if mappable == '1' then
    redis.call('GEOADD', geo, lon, lat, terminal)
    redis.call('SREM', polar, terminal)
  else
    redis.call('ZREM', geo, terminal)
    redis.call('SADD', polar, terminal)
  end
end

local function add_counts(terminal, increments)
  local total = decoded(redis.call('HGET', counts, terminal)) or {}
  for name, n in pairs(cjson.decode(increments)) do
    total[name] = (tonumber(total[name]) or 0) + n
  end
  redis.call('HSET', counts, terminal, cjson.encode(total))
end

for i = 1, #ARGV, 8 do
  local terminal = ARGV[i]
  if ARGV[i + 1] ~= '' then
    redis.call('ZADD', seen, 'GT', ARGV[i + 1], terminal)
  end
  if ARGV[i + 2] ~= '' then
    place(terminal, ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6])
  end
  if ARGV[i + 7] ~= '' then
    add_counts(terminal, ARGV[i + 7])
  end
end
return #ARGV / 8
