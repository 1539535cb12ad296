-- Dedup + enqueue a batch of uplink messages (docs/internals.md has the entry fields).
-- KEYS: the class streams, highest first, then one replay-window key per terminal in the batch.
-- ARGV: as admit() in window.lua says, then 3 per message:
--   "<window number> <seq> <class index> <receipt flag> <received at> <expires at or nothing>",
--   the message id, the record.
-- Returns one verdict per message: 0 queued, 1 duplicate, 2 too old.
return admit(3, '^(%d+) (%d+) (%d) ([01]) (%S+) (%S*)$', function(i, terminal, f)
  redis.call('XADD', KEYS[f[3] + 1], '*', 'id', ARGV[i + 1], 't', terminal, 's', f[2], 'r', f[4],
    'rx', f[5], 'x', f[6], 'm', ARGV[i + 2])
end)
