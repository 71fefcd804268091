-- snapshot: no arguments, read-only. The whole game and Redis's now, for a
-- resync or the HTTP API.
if redis.call('EXISTS', key) == 0 then
  return refuse('unknown_game')
end
return with_state('ok', -1)
