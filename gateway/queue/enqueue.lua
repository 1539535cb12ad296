-- Dedup + enqueue one uplink message, atomically (docs/internals.md has the entry fields).
-- KEYS[1] the terminal's seen set, KEYS[2] its class stream
-- ARGV: seq (decimal), window, message id, terminal, receipt flag, received at, expires at, record
-- Returns 0 queued, 1 duplicate, 2 too old.
local seen, seq, window = KEYS[1], padded(ARGV[1]), tonumber(ARGV[2])
local verdict, top = judge(seen, seq, window)
if verdict ~= 0 then
  return verdict
end
-- Append before recording: should a later write fail, a replay may queue twice (the ground
-- dedups), whereas recording first could mark as seen a message that was never queued.
redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 't', ARGV[4], 's', ARGV[1], 'r', ARGV[5],
  'rx', ARGV[6], 'x', ARGV[7], 'm', ARGV[8])
remember(seen, seq, window, top)
return 0
