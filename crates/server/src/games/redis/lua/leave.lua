-- leave: ARGV[3] seat, [4] holder. Game::leave: a waiting game frees the
-- seat (host passes to the lowest remaining seat); an active one keeps the
-- seat's cells and score; a completed one only forgets the holder.
local seat, refusal = held_seat()
if not seat then return refusal end
local status = redis.call('HGET', key, F.status)
if status == ST.waiting then
  redis.call('HDEL', key, S.name .. seat, S.score .. seat, S.connected .. seat, S.left .. seat, S.token .. seat, S.holder .. seat)
  if num(F.host) == seat then
    for i = 0, LAST_SEAT do
      if seated(i) then
        redis.call('HSET', key, F.host, i)
        break
      end
    end
  end
  emit({ t = 'player_left', seq = next_seq(), player = seat, host = num(F.host) })
  note_unattended()
  review()
elseif status == ST.active then
  redis.call('HSET', key, S.left .. seat, 1, S.connected .. seat, 0)
  redis.call('HDEL', key, S.holder .. seat)
  emit({ t = 'player_left', seq = next_seq(), player = seat, host = num(F.host) })
else
  redis.call('HSET', key, S.left .. seat, 1)
  redis.call('HDEL', key, S.holder .. seat)
end
set_ttl()
return refuse('ok')
