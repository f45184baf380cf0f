-- What the writing scripts share: type checks before any write, many ZINCRBYs at once,
-- and the roll of the rolling windows.  Needs shards.lua.
--
-- roll(base, first, plan) reads KEYS[base] (the board's meta hash), KEYS[base + 1 ..
-- base + 3] (the 1h, 24h and 7d windows) and the leaving buckets' first keys from
-- KEYS[first] on, window by window.  `plan` comes from Python (store._Plan.as_args):
--   expected_heads  the meta fields h1h, h24h, h7d, cur as Python last saw them
--                   ("" = absent); the roll happens only if they still hold
--   new_heads       their values after this roll
--   roll            per window: -1 to delete the window (all of it has left), or the
--                   number of its buckets that leave (0: none)

local function check_types(first, last, want)
  for i = first, last do
    local t = redis.call('TYPE', KEYS[i])
    t = t.ok or t
    if t ~= 'none' and t ~= want then
      error('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. t .. ', not a ' .. want)
    end
  end
end

-- ZINCRBY of many members at once: one ZMSCORE and one ZADD per 2000 members
-- instead of a call per member (the script runs alone, so read-then-write is safe)
local function zincr_many(key, deltas)
  local names, by = {}, {}
  for m, c in pairs(deltas) do
    names[#names + 1] = m
    by[#by + 1] = c
  end
  for i = 1, #names, 2000 do
    local last = math.min(i + 1999, #names)
    local now = redis.call('ZMSCORE', key, unpack(names, i, last))
    local args = {}
    for k = i, last do
      args[#args + 1] = (tonumber(now[k - i + 1]) or 0) + by[k]
      args[#args + 1] = names[k]
    end
    redis.call('ZADD', key, unpack(args))
  end
end

-- Returns the heads {h1h, h24h, h7d} as numbers and the meta fields as strings, or nil
-- and the stored fields when the plan was made from an outdated view.  The 7d window,
-- the longest, deletes the buckets it leaves.
local function roll(base, first, plan)
  local meta = KEYS[base]
  local stored = redis.call('HMGET', meta, 'h1h', 'h24h', 'h7d', 'cur')
  for i = 1, 4 do stored[i] = stored[i] or '' end
  local same = true
  for i = 1, 4 do
    if stored[i] ~= plan.expected_heads[i] then same = false end
  end
  if not same then
    -- someone else rolled: fine when they rolled at least as far as we meant to
    for i = 1, 4 do
      local s = tonumber(stored[i])
      if s == nil or s < tonumber(plan.new_heads[i]) then return nil, stored end
    end
    return {tonumber(stored[1]), tonumber(stored[2]), tonumber(stored[3])}, stored
  end
  local k = first
  local moved = false
  for w = 1, 3 do
    local mode = plan.roll[w]
    local window = KEYS[base + w]
    if mode < 0 then
      redis.call('DEL', window)
      moved = true
    elseif mode > 0 then
      local leaving = {}
      for _ = 1, mode do
        bucket_counts(KEYS[k], leaving)
        if w == 3 then delete_group(KEYS[k]) end
        k = k + 1
      end
      for tag, c in pairs(leaving) do leaving[tag] = -c end
      zincr_many(window, leaving)
      redis.call('ZREMRANGEBYSCORE', window, '-inf', 0)
    end
  end
  local new = plan.new_heads
  for i = 1, 4 do
    if new[i] ~= stored[i] then moved = true end
  end
  if moved then
    redis.call('HSET', meta, 'h1h', new[1], 'h24h', new[2], 'h7d', new[3], 'cur', new[4])
    redis.call('HINCRBY', meta, 'gen', 1)  -- the windows changed (see rising_stamp)
  end
  return {tonumber(new[1]), tonumber(new[2]), tonumber(new[3])}, new
end

