-- join: ARGV[3] name, [4] token hash, [5] holder. Game::join.
if redis.call('EXISTS', key) == 0 then
  return refuse('unknown_game')
end
settle()
-- A completed game answers already_started, full or not (protocol §5).
if redis.call('HGET', key, F.status) == ST.completed then
  set_ttl()
  return refuse('already_started')
end
local maxp = num(F.max_players)
local free = nil
for i = 0, maxp - 1 do
  if not seated(i) then free = i break end
end
if free == nil then
  set_ttl()
  return refuse('game_full')
end
-- Quick play (ARGV[6] = '1') takes only a public game someone is in.
if ARGV[6] == '1' then
  local _, connected = seats()
  if connected == 0 or redis.call('HGET', key, F.public) ~= '1' then
    set_ttl()
    return refuse('not_open')
  end
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
-- The joiner's snapshot is taken after its join, before what the join
-- causes (a start, a countdown), which it then hears like everyone else.
local reply = with_state('ok', free)
review()
set_ttl()
return reply
