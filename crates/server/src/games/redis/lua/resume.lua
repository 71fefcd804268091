-- resume: ARGV[3] token hash, [4] holder. Game::can_resume then
-- set_connected(true); the previous holder, on whatever node, is told to
-- close with 4001 by a 'K<seat>,<new holder>' message on the channel.
if redis.call('EXISTS', key) == 0 then
  return refuse('unknown_game')
end
settle()
local seat = nil
for i = 0, LAST_SEAT do
  if redis.call('HGET', key, S.token .. i) == ARGV[3] then seat = i break end
end
if seat == nil then
  set_ttl()
  return refuse('bad_token')
end
-- A connection holds one seat: resuming its own is a resync, another seat
-- of the same game is refused (as the game task does).
for i = 0, LAST_SEAT do
  if i ~= seat and redis.call('HGET', key, S.holder .. i) == ARGV[4] then
    set_ttl()
    return refuse('already_in_game')
  end
end
if redis.call('HGET', key, S.left .. seat) == '1' then
  set_ttl()
  return refuse('not_in_game')
end
local old = redis.call('HGET', key, S.holder .. seat)
redis.call('HSET', key, S.holder .. seat, ARGV[4])
if old and old ~= ARGV[4] then
  out(KICK .. seat .. ',' .. ARGV[4])
end
if redis.call('HGET', key, F.status) ~= ST.completed and redis.call('HGET', key, S.connected .. seat) ~= '1' then
  redis.call('HSET', key, S.connected .. seat, 1)
  redis.call('HDEL', key, F.unattended)
  emit({ t = 'presence', seq = next_seq(), player = seat, connected = true })
  review()
end
set_ttl()
return with_state('ok', seat)
