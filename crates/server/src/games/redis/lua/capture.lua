-- capture: a batch of captures, in arrival order. KEYS[i] is the game of
-- the i-th capture (a game may repeat; on a cluster every key of a batch
-- is the same game), ARGV[3i], [3i+1], [3i+2] its seat, holder and cell
-- (0..=80, range checked by the node). Answers Redis's now, then one code
-- per capture. Game::capture: first writer wins; at or after the deadline
-- the round is over even if no timer has run (settle() ends it first).
-- The hot path: one HMGET, one HSET and the publish of a compact event,
-- which every node frames itself (no MessagePack here); the seat and cell
-- stay the node's text, so no number is formatted twice. The safety TTL
-- set by `start` outlives the round, so an accepted capture leaves it be.
-- The fields a capture of seat `s` reads.
local function fields(s)
  return redis.call('HMGET', key, F.status, F.ends, F.cells, S.holder .. s, S.score .. s, F.owned, F.seq)
end

local function capture(s, holder, c)
  local cell = tonumber(c)
  local g = fields(s)
  if not g[1] then
    return 'unknown_game'
  end
  if g[1] == ST.waiting then
    -- A lobby countdown may be due: start the game first, as a timer would.
    settle()
    g = fields(s)
  end
  if g[4] ~= holder then
    settle()
    set_ttl()
    return 'stale'
  end
  if g[1] ~= ST.active or now >= tonumber(g[2]) then
    settle()
    set_ttl()
    return 'not_active'
  end
  local cells = g[3]
  if string.byte(cells, cell + 1) ~= 0 then
    return 'taken'
  end
  cells = string.sub(cells, 1, cell) .. string.char(tonumber(s) + 1) .. string.sub(cells, cell + 2)
  -- Each number formatted once, as text (Redis would format a Lua number
  -- passed to redis.call again, and so would each concatenation).
  local score = tostring(g[5] + 1)
  local owned = g[6] + 1
  local seq = tostring(g[7] + 1)
  redis.call('HSET', key, F.cells, cells, S.score .. s, score, F.owned, tostring(owned), F.seq, seq)
  out(CAPTURED .. seq .. ',' .. g[2] .. ',' .. c .. ',' .. s .. ',' .. score)
  if owned == CELLS then
    finish('board_full', now)
    set_ttl()
  end
  return 'ok'
end

local reply = { ms(now) }
for i = 1, #KEYS do
  key = KEYS[i]
  chan = key .. CHANNEL_SUFFIX
  local a = 3 * i
  reply[i + 1] = capture(ARGV[a], ARGV[a + 1], ARGV[a + 2])
end
return reply
