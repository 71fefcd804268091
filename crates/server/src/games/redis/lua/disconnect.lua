-- disconnect: ARGV[3] seat, [4] holder. The holding connection ended
-- without `leave`: Game::set_connected(false). A completed game is frozen.
local seat, refusal = held_seat()
if not seat then return refusal end
redis.call('HDEL', key, S.holder .. seat)
if redis.call('HGET', key, F.status) ~= ST.completed and redis.call('HGET', key, S.connected .. seat) == '1' then
  redis.call('HSET', key, S.connected .. seat, 0)
  emit({ t = 'presence', seq = next_seq(), player = seat, connected = false })
  note_unattended()
  review()
end
set_ttl()
return refuse('ok')
