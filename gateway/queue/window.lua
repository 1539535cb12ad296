-- The replay window of one terminal, prepended to the enqueue and deliver scripts: the rule of
-- protocols.seal.ReplayWindow (too old is judged before duplicate) on one compact string key.
--
-- Layout (docs/internals.md): 30 ASCII digits, then a bitmap of W bits (MSB first, W/8 bytes rounded up).
--   bytes 0..19   the highest accepted seq, zero-padded decimal
--   bytes 20..29  W, the window the bitmap was built for
--   bit p of the bitmap tells whether the one seq in [top - W, top - 1] with seq mod W == p was accepted;
--   top itself is implicitly accepted, so W bits hold exactly the W + 1 seqs the rule can still call duplicate.
--
-- Seqs reach 2^63-1, beyond the 2^53 a Lua number (a double) holds exactly, so a seq is kept as two
-- exact halves, hi * 1e10 + lo. A difference (ah - bh) * 1e10 + (al - bl) always has the right sign and
-- is exact whenever it is below 2e10, which is all the rule needs since W < 1e10.

local HEADER = 30
local BITS = HEADER * 8

local function halves(decimal)
  local n = #decimal
  if n <= 10 then
    return 0, tonumber(decimal)
  end
  return tonumber(string.sub(decimal, 1, n - 10)), tonumber(string.sub(decimal, n - 9))
end

-- seq mod w, exactly: hi mod w and 1e10 mod w are below w <= 2^20, so every product stays below 2^53.
local function slot(w, hi, lo)
  return math.fmod(math.fmod(hi, w) * math.fmod(1e10, w) + lo, w)
end

local function setbit(win, p, v)
  redis.call('SETBIT', win.key, BITS + p, v)
end

-- Clear bitmap positions first..last (no wrap): odd bits one by one, whole bytes at once.
local function zero(win, first, last)
  while first <= last and first % 8 ~= 0 do
    setbit(win, first, 0)
    first = first + 1
  end
  while last >= first and (last + 1) % 8 ~= 0 do
    setbit(win, last, 0)
    last = last - 1
  end
  if first <= last then
    redis.call('SETRANGE', win.key, HEADER + first / 8, string.rep('\0', (last - first + 1) / 8))
  end
end

-- Clear n positions from p on, wrapping past the end of the bitmap.
local function zero_wrapped(win, p, n)
  local tail = math.min(n, win.w - p)
  zero(win, p, p + tail - 1)
  zero(win, 0, n - tail - 1)
end

local function header(win)
  return string.format('%010d%010d%010d', win.hi, win.lo, win.w)
end

-- Start the key afresh with top = hi, lo and an empty bitmap.
local function create(win, hi, lo)
  win.hi, win.lo = hi, lo
  redis.call('SET', win.key, header(win) .. string.rep('\0', math.ceil(win.w / 8)))
end

-- The key was built for another window: keep what the old bitmap knows of the seqs below top that both
-- windows cover; the rest reads as not seen, as if those seqs had been trimmed.
local function resize(win, was)
  local old = redis.call('GET', win.key)
  if #old ~= HEADER + math.ceil(was / 8) then
    error({err = 'ERR ' .. win.key .. ' is not a satgw replay window'})
  end
  local po, pn = slot(was, win.hi, win.lo), slot(win.w, win.hi, win.lo)
  local n = math.min(was, win.w)
  if win.hi == 0 then
    n = math.min(n, win.lo)
  end
  create(win, win.hi, win.lo)
  for k = 1, n do
    local o = (po - k) % was
    if math.floor(string.byte(old, HEADER + math.floor(o / 8) + 1) / 2 ^ (7 - o % 8)) % 2 == 1 then
      setbit(win, (pn - k) % win.w, 1)
    end
  end
end

-- The window state of one key, for window w; a key that is not a window fails the call before any write.
local function load(key, w)
  local win = {key = key, w = w}
  local head = redis.call('GETRANGE', key, 0, HEADER - 1)
  if head == '' then
    return win
  end
  local was = #head == HEADER and not string.find(head, '%D') and tonumber(string.sub(head, 21, 30))
  if not was or was < 1 then
    error({err = 'ERR ' .. key .. ' is not a satgw replay window'})
  end
  win.hi, win.lo = tonumber(string.sub(head, 1, 10)), tonumber(string.sub(head, 11, 20))
  if was ~= w then
    resize(win, was)
  end
  return win
end

-- 0 fresh, 1 duplicate, 2 too old.
local function judge(win, hi, lo)
  if not win.hi then
    return 0
  end
  local below = (win.hi - hi) * 1e10 + (win.lo - lo)
  if below < 0 then
    return 0
  elseif below == 0 then
    return 1
  elseif below > win.w then
    return 2
  end
  return redis.call('GETBIT', win.key, BITS + slot(win.w, hi, lo))
end

-- Record a seq judged fresh.
local function record(win, hi, lo)
  if not win.hi then
    return create(win, hi, lo)
  end
  local above = (hi - win.hi) * 1e10 + (lo - win.lo)
  if above < 0 then
    return setbit(win, slot(win.w, hi, lo), 1)
  end
  -- A new top: the positions of the seqs it skips, (top, seq), now stand for seqs never seen, and the
  -- old top, implicit until now, gets its bit (unless it falls out of the window).
  local p = slot(win.w, win.hi, win.lo)
  if above > win.w then
    zero(win, 0, win.w - 1)
  else
    zero_wrapped(win, (p + 1) % win.w, above - 1)
    setbit(win, p, 1)
  end
  win.hi, win.lo = hi, lo
  redis.call('SETRANGE', win.key, 0, string.sub(header(win), 1, 20))
end

-- Judge and record a batch: the n window keys are the last n KEYS.
-- ARGV[1] the window, ARGV[2] n, ARGV[3..5] what trace_init takes (common.lua), ARGV[6 .. n + 5] the
-- terminals of the window keys; then `width` arguments per message, the first a text that `pattern`
-- splits into window number (1..n), seq (decimal) and the message's other short fields.
-- append(i, terminal, fields) writes the entry of a fresh message whose arguments start at ARGV[i];
-- refuse(i, fields, verdict) notes one judged a duplicate (1) or too old (2). Short fields share one
-- argument because redis-py packs each argument in Python, which costs the client more than the whole
-- script costs Redis. Returns one verdict per message. Appending before recording means a failed append
-- leaves the message unseen, so its retry is judged afresh.
local function admit(width, pattern, append, refuse)
  local w, n = tonumber(ARGV[1]), tonumber(ARGV[2])
  trace_init(ARGV[3], ARGV[4], ARGV[5])
  local windows = {}
  for k = 1, n do
    windows[k] = load(KEYS[#KEYS - n + k], w)
  end
  local verdicts = {}
  for i = n + 6, #ARGV, width do
    local fields = {string.match(ARGV[i], pattern)}
    local k = tonumber(fields[1])
    local win, hi, lo = windows[k], halves(fields[2])
    local verdict = judge(win, hi, lo)
    if verdict == 0 then
      append(i, ARGV[k + 5], fields)
      record(win, hi, lo)
    else
      refuse(i, fields, verdict)
    end
    verdicts[#verdicts + 1] = verdict
  end
  return verdicts
end
