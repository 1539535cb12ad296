-- Append hops written from Python (failed attempts, fragments, rejections) to message traces.
-- ARGV[1], ARGV[2] the trace prefix and TTL (common.lua); then pairs (message id, hop line with its newline).
trace_init(ARGV[1], ARGV[2], '')
for k = 3, #ARGV, 2 do
  hop(ARGV[k], ARGV[k + 1])
end
return 0
