-- lease: the cluster's game table (layout.rs), without the game prelude:
-- KEYS[1] the table, ARGV[1] the lease in ms, ARGV[2..] the games a node
-- holds a connected player's seat in (waiting or active). Drops the games
-- whose lease ran out, then leases each given game until now + the lease
-- (GT: never shortens a lease; a game missing, its lease lapsed while it was
-- still played, counts again). Answers the games counting now.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
local until_ms = string.format('%.0f', now + tonumber(ARGV[1]))
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'GT', until_ms, ARGV[i])
end
return redis.call('ZCARD', KEYS[1])
