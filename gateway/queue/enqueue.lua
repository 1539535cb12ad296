-- Dedup + enqueue a batch of uplink messages (docs/internals.md has the entry fields).
-- KEYS: the class streams, highest first, then one replay-window key per terminal in the batch.
-- ARGV: as admit() in window.lua says, then 3 per message:
--   "<window number> <seq> <class index> <receipt flag> <received at> <expires at or nothing>",
--   the message id, the record.
-- Traces: a queued message gets its received and queued hops, a replay a duplicate hop.
-- Returns one verdict per message: 0 queued, 1 duplicate, 2 too old.
return admit(3, '^(%d+) (%d+) (%d) ([01]) (%S+) (%S*)$', function(i, terminal, f)
  local sid = redis.call('XADD', KEYS[f[3] + 1], '*', 'id', ARGV[i + 1], 't', terminal, 's', f[2], 'r', f[4],
    'rx', f[5], 'x', f[6], 'm', ARGV[i + 2])
  if trace_ttl > 0 then
    local expires = f[6] ~= '' and ' expires=' .. f[6] or ''
    first_hop(ARGV[i + 1], 'received ' .. f[5] .. ' class=' .. f[3] .. ' receipt=' .. f[4] .. expires ..
      '\nqueued ' .. trace_now .. ' sid=' .. sid .. '\n')
  end
end, function(i, f, verdict)
  if trace_ttl > 0 then
    hop(ARGV[i + 1], 'duplicate ' .. f[5] .. (verdict == 2 and ' why=too_old' or '') .. '\n')
  end
end)
