-- Dead-letter a batch of taken entries.
-- KEYS[1..n-1] the class streams, highest first; KEYS[n] the dead-letter stream
-- ARGV[1] group, ARGV[2] reason, ARGV[3..5] what trace_init takes (common.lua), then pairs of
-- (class index, stream id). Each entry's trace gets a dead hop.
-- Returns how many entries were still there to move.
local dead, moved = KEYS[#KEYS], 0
trace_init(ARGV[3], ARGV[4], ARGV[5])
for k = 6, #ARGV, 2 do
  local class = tonumber(ARGV[k])
  moved = moved + bury(KEYS[class + 1], dead, ARGV[1], ARGV[k + 1], ARGV[2], class)
end
return moved
