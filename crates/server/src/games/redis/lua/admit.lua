-- admit: the cluster's game table (layout.rs), without the game prelude:
-- KEYS[1] the table, ARGV[1] a game about to be created, [2] --max-games,
-- [3] the lease in ms. The game counts (is added, leased until now + the
-- lease) unless that many unexpired games count already. Answers
-- { 1 (admitted) or 0 (refused), the games counting now }. Expired members
-- are left to lease.lua's purge: this stays O(log N).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local counted = redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.0f', now), '+inf')
if counted >= tonumber(ARGV[2]) then
  return { 0, counted }
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[3])), ARGV[1])
return { 1, counted + 1 }
