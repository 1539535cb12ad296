-- Dedup + append a batch of ground deliveries to the outbox (outbox.py has the entry fields).
-- KEYS[1] the outbox stream, [KEYS[2] the incident event stream: uplink only,] then one ground replay-window
--   key per terminal in the batch. A new distress delivery is appended to the incident stream too.
-- ARGV: as admit() in window.lua says, then 4 per delivery:
--   "<window number> <seq> <class> <receipt flag> <delivered at>", the message id, the link, the payload.
-- Traces: a new delivery gets a delivered hop, a replay a ground_duplicate hop, both at its delivery time.
-- Returns one verdict per delivery: 0 new, 1 duplicate, 2 too old.
local incidents = #KEYS - tonumber(ARGV[2]) >= 2 and KEYS[2] or nil
return admit(4, '^(%d+) (%d+) (%d) ([01]) (%S+)$', function(i, terminal, f)
  redis.call('XADD', KEYS[1], '*', 'id', ARGV[i + 1], 't', terminal, 's', f[2], 'p', f[3], 'r', f[4],
    'l', ARGV[i + 2], 'at', f[5], 'b', ARGV[i + 3])
  if incidents and f[3] == '0' then
    redis.call('XADD', incidents, '*', 'id', ARGV[i + 1], 't', terminal, 's', f[2], 'l', ARGV[i + 2], 'b', ARGV[i + 3])
  end
  if trace_ttl > 0 then
    hop(ARGV[i + 1], 'delivered ' .. f[5] .. ' link=' .. esc(ARGV[i + 2]) .. '\n')
  end
end, function(i, f, verdict)
  if trace_ttl > 0 then
    hop(ARGV[i + 1], 'ground_duplicate ' .. f[5] .. ' link=' .. esc(ARGV[i + 2]) .. '\n')
  end
end)
