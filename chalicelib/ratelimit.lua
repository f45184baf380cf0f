-- One fixed window per client and route class: KEYS[1] counts this window's requests.
-- ARGV[1]: the window in milliseconds.  Returns {count, milliseconds until the window ends}.
-- Every key gets a TTL (the window) on its first request, and again if it ever lost it.
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
