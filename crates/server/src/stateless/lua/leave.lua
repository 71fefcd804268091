-- leave: ARGV[3] seat, [4] holder. Game::leave: a waiting game frees the
-- seat (host passes to the lowest remaining seat); an active one keeps the
-- seat's cells and score; a completed one only forgets the holder.
if redis.call('EXISTS', key) == 0 then
  return refuse('unknown_game')
end
settle()
local seat = tonumber(ARGV[3])
if not holds(seat, ARGV[4]) then
  set_ttl()
  return refuse('stale')
end
local status = redis.call('HGET', key, 'st')
if status == 'w' then
  redis.call('HDEL', key, 'n' .. seat, 's' .. seat, 'c' .. seat, 'l' .. seat, 'k' .. seat, 'h' .. seat)
  if num('host') == seat then
    for i = 0, 7 do
      if seated(i) then
        redis.call('HSET', key, 'host', i)
        break
      end
    end
  end
  emit({ t = 'player_left', seq = next_seq(), player = seat, host = num('host') })
  note_unattended()
elseif status == 'a' then
  redis.call('HSET', key, 'l' .. seat, 1, 'c' .. seat, 0)
  redis.call('HDEL', key, 'h' .. seat)
  emit({ t = 'player_left', seq = next_seq(), player = seat, host = num('host') })
else
  redis.call('HSET', key, 'l' .. seat, 1)
  redis.call('HDEL', key, 'h' .. seat)
end
set_ttl()
return refuse('ok')
