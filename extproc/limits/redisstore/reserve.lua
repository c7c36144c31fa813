-- reserve: all-or-nothing reservation of one request across counters.
--
-- KEYS[1]  the request's record (hash), which lives only while the
--          reservation is in flight: settle deletes it, and it expires at
--          the deadline, after which a settle is a no-op anyway
-- KEYS[2…] per counter: one key (fixed: string; gauge: zset), or two
--          (sliding: zset of id -> time, hash of id -> amount and ':total';
--          fixed with an idle expiry: the string, and its idle deadline in ms)
-- ARGV[1]  now in ms, or 0 for the server's clock
-- ARGV[2]  ttl in ms: the reservation's deadline is now + ttl (per request)
-- ARGV[3]  request id
-- ARGV[4…] per counter: window (1 fixed, 2 sliding, 3 gauge), limit
--          (-1 unlimited), amount, param (fixed: window end in ms or 0;
--          sliding: span in ms), idle (fixed: ms the counter outlives its
--          last reservation, or 0 for no idle expiry)
--
-- Returns {2} for a duplicate id (the caller refuses it); otherwise {ok, refused index (0-based,
-- -1), retry ms, used_1, reset_1, …}: used after the reservation when ok,
-- before it when refused.
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ttl = tonumber(ARGV[2])
local id = ARGV[3]
local rec = KEYS[1]
local GRACE = 60000 -- late settles still find their counter

-- A record in flight means the id is reserved: a duplicate. Past its
-- deadline by the script's clock (an injected one in tests) it is a
-- leftover that PEXPIRE has not reclaimed yet.
local d = redis.call('HGET', rec, 'd')
if d and now < tonumber(d) then
  return {2}
end

-- Drop in slices: unpack has a stack limit.
local function hdel_sum(hkey, ids)
  local freed = 0
  for s = 1, #ids, 1000 do
    local part = {}
    for j = s, math.min(s + 999, #ids) do part[#part + 1] = ids[j] end
    local amts = redis.call('HMGET', hkey, unpack(part))
    for j = 1, #amts do freed = freed + tonumber(amts[j] or '0') end
    redis.call('HDEL', hkey, unpack(part))
  end
  return freed
end

local n = (#ARGV - 3) / 5
local cs = {}
local out = {1, -1, 0}
local k = 2
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local c = {win = tonumber(ARGV[a + 1]), limit = tonumber(ARGV[a + 2]),
             amount = tonumber(ARGV[a + 3]), param = tonumber(ARGV[a + 4]),
             idle = tonumber(ARGV[a + 5]), key = KEYS[k]}
  if c.win == 2 or (c.win == 1 and c.idle > 0) then
    c.hkey = KEYS[k + 1]
    k = k + 2
  else
    k = k + 1
  end
  local used, reset = 0, 0
  if c.win == 1 then
    if c.param > 0 then
      reset = math.max(c.param - now, 0)
      if now >= c.param then redis.call('DEL', c.key) end
    end
    if c.idle > 0 then
      -- hkey holds the idle deadline, checked against the script's now
      -- (an injected clock in tests); PEXPIRE only reclaims the memory.
      local till = tonumber(redis.call('GET', c.hkey) or '0')
      if till > 0 and now >= till then
        redis.call('DEL', c.key, c.hkey)
        till = 0
      end
      if till > 0 and redis.call('EXISTS', c.key) == 1 and (reset == 0 or till - now < reset) then reset = till - now end
    end
    used = tonumber(redis.call('GET', c.key) or '0')
  elseif c.win == 2 then
    local cutoff = now - c.param
    local old = redis.call('ZRANGEBYSCORE', c.key, '-inf', cutoff)
    if #old > 0 then
      local freed = hdel_sum(c.hkey, old)
      redis.call('ZREMRANGEBYSCORE', c.key, '-inf', cutoff)
      if freed ~= 0 then redis.call('HINCRBY', c.hkey, ':total', -freed) end
    end
    used = tonumber(redis.call('HGET', c.hkey, ':total') or '0')
    local first = redis.call('ZRANGE', c.key, 0, 0, 'WITHSCORES')
    if #first > 0 then reset = tonumber(first[2]) + c.param - now else reset = c.param end
  else
    redis.call('ZREMRANGEBYSCORE', c.key, '-inf', now)
    used = redis.call('ZCARD', c.key)
  end
  c.used = used
  cs[i] = c
  out[#out + 1] = used
  out[#out + 1] = reset
  if out[2] < 0 and c.limit >= 0 and used + c.amount > c.limit then
    out[1] = 0
    out[2] = i - 1
    if c.win == 2 then
      out[3] = c.param
      if c.amount <= c.limit then
        -- The earliest time enough old entries have left, walking from
        -- the oldest in pages that double: ZRANGE by rank is O(log n)
        -- plus the page, so a refusal costs O(log n + k), k the entries
        -- that must leave (one, for a full RPM window), not the window.
        -- Released entries were deleted at settle, so none is skipped.
        local freed, from, size = 0, 0, 8
        while true do
          local es = redis.call('ZRANGE', c.key, from, from + size - 1, 'WITHSCORES')
          if #es == 0 then break end
          local ids = {}
          for j = 1, #es, 2 do ids[#ids + 1] = es[j] end
          local amts = redis.call('HMGET', c.hkey, unpack(ids))
          local hit = false
          for j = 1, #amts do
            freed = freed + tonumber(amts[j] or '0')
            if used - freed + c.amount <= c.limit then
              out[3] = tonumber(es[2 * j]) + c.param - now
              hit = true
              break
            end
          end
          if hit or #es < 2 * size then break end
          from = from + size
          size = math.min(size * 2, 1024)
        end
      end
    elseif c.win == 3 then
      out[3] = 1000
    else
      out[3] = reset
    end
  end
end
if out[1] == 0 then
  return out
end

local deadline = now + ttl
local fields = {'d', deadline}
for i = 1, n do
  local c = cs[i]
  if c.win == 1 then
    redis.call('INCRBY', c.key, c.amount)
    if c.param > 0 then redis.call('PEXPIRE', c.key, c.param - now + GRACE) end
    if c.idle > 0 then
      -- The idle deadline only grows, and never falls before this
      -- reservation's own deadline, so its settle finds the counter.
      local till = math.max(tonumber(redis.call('GET', c.hkey) or '0'), now + math.max(c.idle, ttl))
      redis.call('SET', c.hkey, till)
      local px = till - now + GRACE
      if c.param > 0 then px = math.min(px, c.param - now + GRACE) end
      redis.call('PEXPIRE', c.key, px)
      redis.call('PEXPIRE', c.hkey, px)
    end
  elseif c.win == 2 then
    redis.call('ZADD', c.key, now, id)
    redis.call('HSET', c.hkey, id, c.amount)
    redis.call('HINCRBY', c.hkey, ':total', c.amount)
    redis.call('PEXPIRE', c.key, c.param + GRACE)
    redis.call('PEXPIRE', c.hkey, c.param + GRACE)
  else
    redis.call('ZADD', c.key, deadline, id)
    -- Reservations have their own ttl: a short one must not cut the key's
    -- life below a longer entry's deadline, so the expiry only grows.
    local left = redis.call('PTTL', c.key)
    if left < ttl + GRACE then redis.call('PEXPIRE', c.key, ttl + GRACE) end
  end
  out[4 + (i - 1) * 2] = c.used + c.amount
  fields[#fields + 1] = c.key
  fields[#fields + 1] = c.amount
end
redis.call('DEL', rec)
redis.call('HSET', rec, unpack(fields))
redis.call('PEXPIRE', rec, ttl)
return out
