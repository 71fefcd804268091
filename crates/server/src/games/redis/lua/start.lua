-- start: ARGV[3] seat, [4] holder. Game::start.
local seat, refusal = held_seat()
if not seat then return refusal end
if redis.call('HGET', key, S.left .. seat) == '1' then
  set_ttl()
  return refuse('not_in_game')
end
local status = redis.call('HGET', key, F.status)
local code = nil
if status ~= ST.waiting then
  code = 'already_started'
elseif num(F.host) ~= seat then
  code = 'not_host'
else
  local connected = 0
  for i = 0, LAST_SEAT do
    if seated(i) and redis.call('HGET', key, S.connected .. i) == '1' then connected = connected + 1 end
  end
  if connected < num(F.min_players) then code = 'not_enough_players' end
end
if code then
  set_ttl()
  return refuse(code)
end
begin(now)
set_ttl()
return refuse('ok')
