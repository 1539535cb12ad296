-- Helpers prepended to every satgw queue script.
--
-- Seqs reach 2^63-1, beyond the 2^53 a Lua number (a double) holds exactly, so they travel
-- as 20-digit zero-padded decimals and are split into two exact 10-digit halves for
-- arithmetic and comparison (string `<` in Lua follows the server's locale; halves do not).

local function split(padded)
  return tonumber(string.sub(padded, 1, 10)), tonumber(string.sub(padded, 11, 20))
end

local function less(a, b)
  local ah, al = split(a)
  local bh, bl = split(b)
  return ah < bh or (ah == bh and al < bl)
end

-- padded - n as a padded decimal, or nil below zero; the caller keeps n below 1e10
local function minus(padded, n)
  local hi, lo = split(padded)
  lo = lo - n
  if lo < 0 then
    lo = lo + 1e10
    hi = hi - 1
  end
  if hi < 0 then
    return nil
  end
  return string.format('%010d%010d', hi, lo)
end

-- A seq as a 20-digit padded decimal, from the plain decimal the caller passes.
local function padded(decimal)
  return string.rep('0', 20 - #decimal) .. decimal
end

-- The replay rule of protocols.seal.ReplayWindow on a seen set whose members are padded
-- seqs, all scored 0 so the set orders them bytewise, which for padded decimals is numeric.
-- Returns 0 fresh, 1 duplicate or 2 too old, and the highest seq seen (nil if none).
local function judge(seen, seq, window)
  local top = redis.call('ZRANGE', seen, -1, -1)[1]
  if not top or less(top, seq) then
    return 0, top
  end
  local floor = minus(top, window)
  if floor and less(seq, floor) then
    return 2, top
  end
  if redis.call('ZSCORE', seen, seq) then
    return 1, top
  end
  return 0, top
end

-- Record an accepted seq. Too old is judged before duplicate, so seqs that fell below the
-- window can go at once: the set never holds more than window + 1 members.
local function remember(seen, seq, window, top)
  redis.call('ZADD', seen, 0, seq)
  if top and less(top, seq) then
    local floor = minus(seq, window)
    if floor then
      redis.call('ZREMRANGEBYLEX', seen, '-', '(' .. floor)
    end
  end
end

-- Move one queued entry to the dead-letter stream, then forget it in its class stream.
local function bury(stream, dead, group, id, reason, priority)
  local found = redis.call('XRANGE', stream, id, id)[1]
  if found then
    redis.call('XADD', dead, '*', 'reason', reason, 'p', priority, 'sid', id, unpack(found[2]))
  end
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
  return found and 1 or 0
end
