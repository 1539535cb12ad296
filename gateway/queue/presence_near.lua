-- Terminals whose last fix may lie within a circle, with their fixes (gateway/queue/presence.py).
-- KEYS: geo (GEO set), polar (set), positions (hash terminal -> fix JSON)
-- ARGV: lon, lat, radius in metres
-- Returns terminal, fix JSON, terminal, fix JSON ... : GEO's hits plus every polar fix, which GEO cannot hold,
-- so the answer is a superset the caller narrows with the exact fixes.
local found = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2], 'BYRADIUS', ARGV[3], 'm')
for _, terminal in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  found[#found + 1] = terminal
end
local out = {}
for _, terminal in ipairs(found) do
  local fix = redis.call('HGET', KEYS[3], terminal)
  if fix then
    out[#out + 1] = terminal
    out[#out + 1] = fix
  end
end
return out
