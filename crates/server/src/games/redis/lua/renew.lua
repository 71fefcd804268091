-- renew: ARGV[3] '1' to add the holders missing from the set, '0' to renew
-- only those in it; ARGV[4..] the holders watching through the calling
-- node. Renews their leases for SPECTATOR_LEASE ms. Answers Redis's now,
-- then the holders that were missing (their lease ran out, or they stopped
-- watching meanwhile: the node tells them apart and re-adds the former).
-- A game that is gone gets no spectators back.
local reply = { ms(now) }
if redis.call('EXISTS', key) == 0 then
  return reply
end
local set = watchers()
for i = 4, #ARGV do
  if ARGV[3] == '1' or redis.call('ZSCORE', set, ARGV[i]) then
    redis.call('ZADD', set, ms(now + SPECTATOR_LEASE), ARGV[i])
  else
    reply[#reply + 1] = ARGV[i]
  end
end
redis.call('ZREMRANGEBYSCORE', set, '-inf', ms(now))
redis.call('PEXPIRE', set, SPECTATOR_LEASE)
return reply
