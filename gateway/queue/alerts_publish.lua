-- Queue one outgoing alert for every webhook endpoint, once.
-- KEYS[1] the alert's dedup key; KEYS[2..] one delivery stream per endpoint.
-- ARGV[1] how long the dedup key lives, ms; ARGV[2..] the entry's fields (name, value, ...).
-- Returns 1 if queued, 0 if an alert with this key was already queued within the dedup window.
-- Without the allow-oom flag Redis refuses the whole script up front when memory is full,
-- so an alert is queued for every endpoint or for none.
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
for i = 2, #KEYS do
  redis.call('XADD', KEYS[i], '*', unpack(ARGV, 2))
end
return 1
