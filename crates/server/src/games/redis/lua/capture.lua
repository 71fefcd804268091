-- capture: ARGV[3] seat, [4] holder, [5] cell 0..=80 (range checked by the
-- node). Game::capture: first writer wins; at or after the deadline the
-- round is over even if no timer has run (settle() ends it first).
-- The hot path: one HMGET, one HSET, the publish and the TTL.
local seat = tonumber(ARGV[3])
local s = tostring(seat)
local fields = { F.status, F.ends, F.cells, S.holder .. s, S.score .. s, F.owned, F.seq }
local g = redis.call('HMGET', key, unpack(fields))
if not g[1] then
  return refuse('unknown_game')
end
if g[1] == ST.waiting then
  -- A lobby countdown may be due: start the game first, as a timer would.
  settle()
  g = redis.call('HMGET', key, unpack(fields))
end
if g[4] ~= ARGV[4] then
  settle()
  set_ttl()
  return refuse('stale')
end
if g[1] ~= ST.active or now >= tonumber(g[2]) then
  settle()
  set_ttl()
  return refuse('not_active')
end
local cell = tonumber(ARGV[5])
local cells = g[3]
if string.byte(cells, cell + 1) ~= 0 then
  redis.call('PEXPIRE', key, safety)
  return refuse('taken')
end
cells = string.sub(cells, 1, cell) .. string.char(seat + 1) .. string.sub(cells, cell + 2)
local score = tonumber(g[5]) + 1
local owned = tonumber(g[6]) + 1
local seq = tonumber(g[7]) + 1
redis.call('HSET', key, F.cells, cells, S.score .. s, score, F.owned, owned, F.seq, seq)
redis.call(publish, chan, EVENT .. seq .. ',' .. ST.active .. ',' .. g[2] .. ',' ..
  cmsgpack.pack({ t = 'captured', seq = seq, cell = cell, player = seat, score = score }))
if owned == CELLS then
  finish('board_full', now)
  set_ttl()
else
  redis.call('PEXPIRE', key, safety)
end
return refuse('ok')
