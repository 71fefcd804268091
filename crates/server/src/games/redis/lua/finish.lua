-- finish: no arguments. Every node with players in the game calls it at the
-- deadline; only the first call past the deadline ends the round, so there
-- is exactly one game_over. Answers the status and the deadline, so a node
-- whose clock ran ahead of Redis's can sleep the rest.
if redis.call('EXISTS', key) == 0 then
  return refuse('unknown_game')
end
settle()
local g = redis.call('HMGET', key, F.status, F.ends, F.starts_at)
return { 'ok', ms(now), g[1], due(g[1], g[2], g[3]) }
