-- Shared prelude of every gridcap script (concatenated in front of each one,
-- after the definitions generated from layout.rs: CELLS, RETENTION,
-- LAST_SEAT, EVENT, KICK, CAPTURED, CHANNEL_SUFFIX, WATCHERS_SUFFIX,
-- SPECTATOR_LEASE and the field names F (the game's
-- hash), S (per-seat prefixes, followed by the seat index) and ST (status
-- letters)). It mirrors crates/game-logic: keep the two in step, the
-- differential test (tests/stateless_lua.rs) compares them.
--
-- KEYS[1]  the game's hash, `gridcap:{<game-id>}`; the event channel is
--          KEYS[1] .. CHANNEL_SUFFIX and its spectators' sorted set
--          KEYS[1] .. WATCHERS_SUFFIX (same hash tag, so the same cluster slot)
-- ARGV[1]  'PUBLISH' or 'SPUBLISH' (Redis Cluster: sharded pub/sub), or
--          QUEUE (`--redis-wait-replicas`): the events go to the game's
--          queue, KEYS[1] .. QUEUE_SUFFIX, for the node to publish once the
--          replicas have them (flush.lua), and the answer says how far
--          each game's queue goes (see `answer`)
-- ARGV[2]  the safety TTL in ms, refreshed by every mutation
-- ARGV[3..] the script's own arguments

local key = KEYS[1]
local chan = key .. CHANNEL_SUFFIX
local publish = ARGV[1]
local safety = tonumber(ARGV[2])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- Games whose events this call queued: the game's key -> its queued count.
local queued = {}

-- Sends one event on the game's channel, or queues it (see ARGV[1]).
local function out(payload)
  if publish ~= QUEUE then
    redis.call(publish, chan, payload)
    return
  end
  local list = key .. QUEUE_SUFFIX
  redis.call('RPUSH', list, payload)
  redis.call('PEXPIRE', list, safety)
  queued[key] = redis.call('HINCRBY', key, F.queued, 1)
end

-- The script's answer as the node reads it: `reply` itself, or when
-- queuing, `reply` then each game whose events it queued and its queued
-- count, then how many such games. A call that queued nothing still writes
-- (a short-lived key of the game's slot), so that the WAIT after it covers
-- everything it read.
local function answer(reply)
  if publish ~= QUEUE then
    return reply
  end
  local n = 0
  for game, upto in pairs(queued) do
    reply[#reply + 1] = game
    reply[#reply + 1] = upto
    n = n + 1
  end
  if n == 0 then
    redis.call('SET', KEYS[1] .. WAITED_SUFFIX, '1', 'PX', safety)
  end
  reply[#reply + 1] = n
  return reply
end

local function num(field)
  return tonumber(redis.call('HGET', key, field) or '0')
end

local function ms(x)
  return string.format('%.0f', x)
end

-- The instant a node's timer must call `finish` at: the deadline while
-- active, the lobby auto-start while waiting; '0' for none.
local function due(status, ends, starts_at)
  if status == ST.waiting then return starts_at or '0' end
  return ends or '0'
end

-- Publishes one event: 'E<seq>,<status>,<due>,' then the wire frame,
-- MessagePack as transport::codec decodes it, so nodes relay the bytes as is.
local function emit(msg)
  local g = redis.call('HMGET', key, F.status, F.ends, F.starts_at)
  local header = EVENT .. ms(msg.seq) .. ',' .. g[1] .. ',' .. due(g[1], g[2], g[3]) .. ','
  out(header .. cmsgpack.pack(msg))
end

local function next_seq()
  return redis.call('HINCRBY', key, F.seq, 1)
end

local function seated(i)
  return redis.call('HEXISTS', key, S.name .. i) == 1
end

-- Game::begin: the round starts at `at` (now, or the lobby auto-start).
local function begin(at)
  local dur = num(F.duration)
  local ends = at + dur
  redis.call('HSET', key, F.status, ST.active, F.ends, ms(ends))
  redis.call('HDEL', key, F.unattended, F.starts_at)
  emit({ t = 'started', seq = next_seq(), ends_at_ms = ends, remaining_ms = math.max(ends - now, 0) })
end

-- Seats taken, and those held by a connection.
local function seats()
  local seated_n, connected = 0, 0
  for i = 0, LAST_SEAT do
    if seated(i) then
      seated_n = seated_n + 1
      if redis.call('HGET', key, S.connected .. i) == '1' then connected = connected + 1 end
    end
  end
  return seated_n, connected
end

-- Game::review: while waiting, a full game starts; a public one schedules
-- its auto-start once min_players are connected, or cancels it when they no
-- longer are. The countdown goes out as 'C<seq>,<starts_at or 0>,<now>':
-- each node frames it (its nil fields are beyond cmsgpack).
local function review()
  if redis.call('HGET', key, F.status) ~= ST.waiting then return end
  local seated_n, connected = seats()
  if seated_n == num(F.max_players) then
    begin(now)
    return
  end
  if redis.call('HGET', key, F.public) ~= '1' then return end
  local enough = connected >= num(F.min_players)
  local scheduled = redis.call('HEXISTS', key, F.starts_at) == 1
  local at
  if enough and not scheduled then
    at = now + num(F.lobby_start)
    redis.call('HSET', key, F.starts_at, ms(at))
  elseif scheduled and not enough then
    at = 0
    redis.call('HDEL', key, F.starts_at)
  else
    return
  end
  out(COUNTDOWN .. ms(next_seq()) .. ',' .. ms(at) .. ',' .. ms(now))
end

-- Game::finish: scores by seat, winners = every seated player on the top score.
local function finish(reason, at)
  local maxp = num(F.max_players)
  local scores, top = {}, 0
  for i = 0, maxp - 1 do
    scores[i + 1] = 0
  end
  for i = 0, LAST_SEAT do
    if seated(i) then
      local s = num(S.score .. i)
      if i < maxp then scores[i + 1] = s end
      if s > top then top = s end
    end
  end
  local winners, csv = {}, {}
  for i = 0, LAST_SEAT do
    if seated(i) and num(S.score .. i) == top then
      winners[#winners + 1] = i
      csv[#csv + 1] = tostring(i)
    end
  end
  redis.call('HSET', key, F.status, ST.completed, F.done, ms(at), F.reason, reason, F.winners, table.concat(csv, ','))
  emit({ t = 'game_over', seq = next_seq(), reason = reason, scores = scores, winners = winners })
end

-- Game::handle_timeout at `now`, run before every command: what a node's
-- timer would have done by now, whichever node's timer is late.
local function settle()
  if redis.call('HGET', key, F.status) == ST.waiting then
    local starts_at = tonumber(redis.call('HGET', key, F.starts_at) or '')
    if starts_at and now >= starts_at then begin(starts_at) end
  end
  if redis.call('HGET', key, F.status) == ST.active then
    local ends = num(F.ends)
    if now >= ends then finish('time', ends) end
  end
end

-- Game::note_unattended: a waiting game with nobody connected starts expiring.
local function note_unattended()
  if redis.call('HGET', key, F.status) ~= ST.waiting or redis.call('HEXISTS', key, F.unattended) == 1 then
    return
  end
  for i = 0, LAST_SEAT do
    if seated(i) and redis.call('HGET', key, S.connected .. i) == '1' then return end
  end
  redis.call('HSET', key, F.unattended, ms(now))
end

-- Retention: completed games 60 s after they ended, unattended waiting games
-- 60 s after the last one left; anything else the safety TTL.
local function set_ttl()
  local g = redis.call('HMGET', key, F.status, F.done, F.unattended)
  if g[1] == ST.completed then
    redis.call('PEXPIREAT', key, ms(tonumber(g[2]) + RETENTION))
  elseif g[1] == ST.waiting and g[3] then
    redis.call('PEXPIREAT', key, ms(tonumber(g[3]) + RETENTION))
  else
    redis.call('PEXPIRE', key, safety)
  end
end

-- The sorted set of the connections watching the game (protocol §7),
-- each scored with the Redis-time ms its lease runs out (layout.rs).
local function watchers()
  return key .. WATCHERS_SUFFIX
end

-- Connections watching now: those whose lease has not run out.
local function spectators()
  return redis.call('ZCOUNT', watchers(), '(' .. ms(now), '+inf')
end

-- The answer of a command that changes which seat a connection holds: the
-- code, Redis's now, the seat, and the whole game to build `joined` from,
-- with the spectators counted (as if a field of the hash).
local function with_state(code, seat)
  local reply = { code, ms(now), seat }
  local all = redis.call('HGETALL', key)
  for i = 1, #all do reply[#reply + 1] = all[i] end
  reply[#reply + 1] = F.spectators
  reply[#reply + 1] = spectators()
  return reply
end

local function refuse(code)
  return { code, ms(now) }
end

-- A command from a connection that no longer holds the seat (replaced by a
-- resume, or detached): dropped without an answer, as the game task does.
local function holds(seat, holder)
  return redis.call('HGET', key, S.holder .. seat) == holder
end

-- A command of seat ARGV[3] from holder ARGV[4], once the clock has been
-- settled: the seat, or nil and the answer to return ('unknown_game', or
-- 'stale' when that connection no longer holds the seat).
local function held_seat()
  if redis.call('EXISTS', key) == 0 then
    return nil, refuse('unknown_game')
  end
  settle()
  local seat = tonumber(ARGV[3])
  if not holds(seat, ARGV[4]) then
    set_ttl()
    return nil, refuse('stale')
  end
  return seat
end
