-- create: ARGV[3] name, [4] max players, [5] duration ms, [6] min players,
-- [7] token hash, [8] holder. Game::new: seat 0 hosts; seq 0, no event.
if redis.call('EXISTS', key) == 1 then
  return refuse('exists')
end
redis.call('HSET', key,
  'st', 'w', 'seq', 0, 'host', 0, 'maxp', ARGV[4], 'dur', ARGV[5], 'minp', ARGV[6],
  'ends', 0, 'own', 0, 'cells', string.rep('\0', CELLS),
  'n0', ARGV[3], 's0', 0, 'c0', 1, 'k0', ARGV[7], 'h0', ARGV[8])
set_ttl()
return with_state('ok', 0)
