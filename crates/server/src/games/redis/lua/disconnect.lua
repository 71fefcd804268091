-- disconnect: ARGV[3] seat, [4] holder. The holding connection ended
-- without `leave`: Game::set_connected(false). A completed game is frozen.
if redis.call('EXISTS', key) == 0 then
  return refuse('unknown_game')
end
settle()
local seat = tonumber(ARGV[3])
if not holds(seat, ARGV[4]) then
  set_ttl()
  return refuse('stale')
end
redis.call('HDEL', key, S.holder .. seat)
if redis.call('HGET', key, F.status) ~= ST.completed and redis.call('HGET', key, S.connected .. seat) == '1' then
  redis.call('HSET', key, S.connected .. seat, 0)
  emit({ t = 'presence', seq = next_seq(), player = seat, connected = false })
  note_unattended()
end
set_ttl()
return refuse('ok')
