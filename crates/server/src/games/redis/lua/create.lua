-- create: ARGV[3] name, [4] max players, [5] duration ms, [6] min players,
-- [7] token hash, [8] holder, [9] code, [10] public (1|0), [11] lobby
-- auto-start ms. Game::new: seat 0 hosts; seq 0, no event.
if redis.call('EXISTS', key) == 1 then
  return refuse('exists')
end
redis.call('HSET', key,
  F.status, ST.waiting, F.seq, 0, F.host, 0, F.max_players, ARGV[4], F.duration, ARGV[5], F.min_players, ARGV[6],
  F.ends, 0, F.owned, 0, F.cells, string.rep('\0', CELLS),
  S.name .. 0, ARGV[3], S.score .. 0, 0, S.connected .. 0, 1, S.token .. 0, ARGV[7], S.holder .. 0, ARGV[8],
  F.code, ARGV[9], F.public, ARGV[10], F.lobby_start, ARGV[11], F.created, ms(now))
set_ttl()
return with_state('ok', 0)
