-- join: ARGV[3] name, [4] token hash, [5] holder. Game::join.
if redis.call('EXISTS', key) == 0 then
  return refuse('unknown_game')
end
settle()
local maxp = num(F.max_players)
local free = nil
for i = 0, maxp - 1 do
  if not seated(i) then free = i break end
end
if free == nil then
  set_ttl()
  return refuse('game_full')
end
if redis.call('HGET', key, F.status) ~= ST.waiting then
  set_ttl()
  return refuse('already_started')
end
if not seated(num(F.host)) then
  redis.call('HSET', key, F.host, free)
end
redis.call('HSET', key, S.name .. free, ARGV[3], S.score .. free, 0, S.connected .. free, 1,
  S.token .. free, ARGV[4], S.holder .. free, ARGV[5])
redis.call('HDEL', key, S.left .. free, F.unattended)
emit({ t = 'player_joined', seq = next_seq(),
  player = { id = free, name = ARGV[3], color = free, score = 0, connected = true } })
local count = 0
for i = 0, LAST_SEAT do
  if seated(i) then count = count + 1 end
end
if count == maxp then begin() end
set_ttl()
return with_state('ok', free)
