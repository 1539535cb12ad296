-- Put dead alert deliveries back at the tail of their endpoints' streams, with a fresh attempt count.
-- KEYS[1] the dead-letter stream, KEYS[2..n+1] the streams of the configured endpoints;
-- ARGV[1..n] those endpoints' names, ARGV[n+1..] dead ids.
-- A dead delivery of an endpoint no longer configured stays where it is. Returns how many moved.
local dead, streams, moved = KEYS[1], {}, 0
local dropped = {e = true, reason = true, status = true, n = true, err = true, sid = true}
for i = 2, #KEYS do
  streams[ARGV[i - 1]] = KEYS[i]
end
for k = #KEYS, #ARGV do
  local found = redis.call('XRANGE', dead, ARGV[k], ARGV[k])[1]
  if found then
    local fields, keep, stream = found[2], {}, nil
    for j = 1, #fields, 2 do
      if fields[j] == 'e' then
        stream = streams[fields[j + 1]]
      elseif not dropped[fields[j]] then
        keep[#keep + 1] = fields[j]
        keep[#keep + 1] = fields[j + 1]
      end
    end
    if stream and #keep > 0 then
      redis.call('XADD', stream, '*', unpack(keep))
      redis.call('XDEL', dead, ARGV[k])
      moved = moved + 1
    end
  end
end
return moved
