-- watch: ARGV[3] holder (`<node instance>/<conn>`), [4] most spectators.
-- Protocol §7: the holder watches the game, leased for SPECTATOR_LEASE ms
-- (its node renews it, see renew.lua); watching again is a resync, counted
-- once. Beyond ARGV[4] unexpired spectators: game_full. A spectator has no
-- seat: no event, and the game's TTL is left be (a spectator keeps no game
-- alive) unless settling the clock moved the game on.
if redis.call('EXISTS', key) == 0 then
  return refuse('unknown_game')
end
local before = redis.call('HGET', key, F.status)
settle()
if redis.call('HGET', key, F.status) ~= before then set_ttl() end
local set = watchers()
redis.call('ZREMRANGEBYSCORE', set, '-inf', ms(now))
if not redis.call('ZSCORE', set, ARGV[3]) and redis.call('ZCARD', set) >= tonumber(ARGV[4]) then
  return refuse('game_full')
end
redis.call('ZADD', set, ms(now + SPECTATOR_LEASE), ARGV[3])
-- Every lease is now + SPECTATOR_LEASE at most: the set outlives none.
redis.call('PEXPIRE', set, SPECTATOR_LEASE)
return with_state('ok', -1)
