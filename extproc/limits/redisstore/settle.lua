-- settle: replace a reservation by actual usage, once.
--
-- KEYS     as for reserve
-- ARGV[1]  now in ms, or 0 for the server's clock
-- ARGV[2]  request id
-- ARGV[3…5] actual cost, tokens, requests
-- ARGV[6…] per counter: window, dim (0 cost, 1 tokens, 2 requests, 3
--          parallel), idle (1 when a fixed counter has an idle key, else 0)
--
-- Returns 1 when settled, 0 when the reservation is unknown, already
-- settled, or past its deadline (its estimate then stays charged).
-- Settling deletes the record: ids are Weir's random ones, used once, so
-- nothing needs to remember a settled id, and a second settle finds no
-- record, which is the same no-op.
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local id = ARGV[2]
local actual = {[0] = tonumber(ARGV[3]), [1] = tonumber(ARGV[4]), [2] = tonumber(ARGV[5]), [3] = 0}
local rec = KEYS[1]

local d = redis.call('HGET', rec, 'd')
if not d then
  return 0
end
if now >= tonumber(d) then
  redis.call('DEL', rec)
  return 0
end
local n = (#ARGV - 5) / 3
local k = 2
for i = 1, n do
  local win = tonumber(ARGV[5 + (i - 1) * 3 + 1])
  local dim = tonumber(ARGV[5 + (i - 1) * 3 + 2])
  local idle = tonumber(ARGV[5 + (i - 1) * 3 + 3])
  local key = KEYS[k]
  local hkey
  if win == 2 or (win == 1 and idle > 0) then
    hkey = KEYS[k + 1]
    k = k + 2
  else
    k = k + 1
  end
  local reserved = redis.call('HGET', rec, key)
  if reserved then
    local delta = actual[dim] - tonumber(reserved)
    if win == 1 then
      if delta ~= 0 and redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, delta) end
    elseif win == 2 then
      if redis.call('ZSCORE', key, id) then
        if delta ~= 0 then redis.call('HINCRBY', hkey, ':total', delta) end
        if redis.call('HINCRBY', hkey, id, delta) == 0 then
          -- Released: it counts nothing, so it goes (memory, and the
          -- walk of a refusal's Retry-After).
          redis.call('ZREM', key, id)
          redis.call('HDEL', hkey, id)
        end
      end
    else
      redis.call('ZREM', key, id)
    end
  end
end
redis.call('DEL', rec)
return 1
