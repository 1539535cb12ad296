-- Dedup + append one ground delivery to the outbox, atomically (outbox.py has the entry fields).
-- KEYS[1] the terminal's ground seen set, KEYS[2] the outbox stream
-- ARGV: seq (decimal), window, message id, terminal, class, receipt flag, link, delivered at, payload
-- Returns 0 new, 1 duplicate, 2 too old.
local seen, seq, window = KEYS[1], padded(ARGV[1]), tonumber(ARGV[2])
local verdict, top = judge(seen, seq, window)
if verdict ~= 0 then
  return verdict
end
redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 't', ARGV[4], 's', ARGV[1], 'p', ARGV[5], 'r', ARGV[6],
  'l', ARGV[7], 'at', ARGV[8], 'b', ARGV[9])
remember(seen, seq, window, top)
return 0
