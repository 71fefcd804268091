#!/usr/bin/env bash
# The floor of a capture in Redis (issue 13): what one capture costs Redis
# when the capture script's calls come in batches, for the script as it is
# and for shapes that do less, on an idle redis-server of its own (no
# gridcap node, no bots). Per shape and batch size: redis-server's CPU time
# (/proc schedstat of all its threads) and its own time inside EVALSHA
# (FCALL for the function; INFO commandstats) over FLOOR_GAMES x FLOOR_CELLS captures, divided by
# the captures. Two command connections send the batches (the two nodes,
# one call in flight each) and two connections subscribe to every game's
# channel (each node hears every game), as in scripts/bench/stateless.sh.
#
# Shapes (FLOOR_SHAPES):
#   bare     a script that answers `ok` per capture: the call, its
#            arguments and reply, the I/O
#   prelude  bare plus the shared prelude (layout tables, common.lua)
#   publish  prelude plus the compact event's PUBLISH per capture, no game
#            state read or written: the floor of any script that publishes
#            each capture
#   current  the capture script as shipped (prelude + common.lua + capture.lua)
#   packed   a capture's hot state (status, deadline, seq, owned, scores,
#            holders, cells) packed in one string key per game: one MGET
#            and one MSET per batch instead of an HMGET and an HSET per
#            capture, the same PUBLISH per capture (the experiment only:
#            the other scripts do not keep such a key)
#   function current as a Redis Function (Redis >= 7: FUNCTION LOAD once,
#            FCALL per batch): the layout tables and common.lua's helpers
#            are made once at load instead of at every call
#
#   scripts/bench/stateless-floor.sh                    (about 2 minutes)
#   FLOOR_BATCHES="8" FLOOR_ROUNDS=5 FLOOR_SHAPES="current packed" scripts/bench/stateless-floor.sh
#
# Results: $OUT/stateless-floor.tsv (every run) and .md (medians).

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REDIS_PORT=${BENCH_REDIS_PORT:-28760}
SHAPES=${FLOOR_SHAPES:-"bare prelude publish current packed function"}
BATCHES=${FLOOR_BATCHES:-"1 4 8 16 32"}
ROUNDS=${FLOOR_ROUNDS:-3}
GAMES=${FLOOR_GAMES:-2048}
CELLS=${FLOOR_CELLS:-40}
LUA="$ROOT/crates/server/src/games/redis/lua"
REDIS_PID=""

command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is not installed" >&2; exit 1; }

stop_floor_redis() {
    [[ -n "$REDIS_PID" ]] || return 0
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    while kill -0 "$REDIS_PID" 2>/dev/null; do sleep 0.05; done
    REDIS_PID=""
}
trap stop_floor_redis EXIT

# The definitions layout.rs's lua_prelude() generates, printed once by the
# server crate's `lua-prelude` example.
PRELUDE=$(cd "$ROOT" && cargo run --release -q -p gridcap-server --example lua-prelude)
prelude() { printf '%s\n' "$PRELUDE"; }

# A script as scripts.rs builds it: prelude, common.lua, the body in main().
with_prelude() {
    prelude
    cat "$LUA/common.lua"
    printf '\nlocal function main()\n'
    cat
    printf '\nend\nreturn answer(main())\n'
}

# current as a function library: common.lua's per-call values (its lines
# from `local key` to `local queued`) become upvalues set at each call.
as_function() {
    printf '#!lua name=floor\n'
    prelude
    printf 'local KEYS, ARGV, key, chan, publish, safety, now, queued\n'
    sed '/^local key = KEYS\[1\]$/,/^local queued = {}$/d' "$LUA/common.lua"
    printf '\nlocal function main()\n'
    cat "$LUA/capture.lua"
    cat <<'EOF'
end
redis.register_function('capture', function(k, a)
  KEYS, ARGV = k, a
  key = KEYS[1]
  chan = key .. CHANNEL_SUFFIX
  publish = ARGV[1]
  safety = tonumber(ARGV[2])
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  queued = {}
  return answer(main())
end)
EOF
}

# The script of shape $1.
shape() {
    case $1 in
    bare) printf 'local r = { "0" }\nfor i = 1, #KEYS do r[i + 1] = "ok" end\nreturn r\n' ;;
    prelude) printf 'local r = { ms(now) }\nfor i = 1, #KEYS do r[i + 1] = "ok" end\nreturn r\n' | with_prelude ;;
    publish) with_prelude <<'EOF'
local r = { ms(now) }
for i = 1, #KEYS do
  local a = 3 * i
  redis.call(publish, KEYS[i] .. CHANNEL_SUFFIX, CAPTURED .. '12,1764548000000,' .. ARGV[a + 2] .. ',' .. ARGV[a] .. ',7')
  r[i + 1] = 'ok'
end
return r
EOF
    ;;
    current) with_prelude <"$LUA/capture.lua" ;;
    function) as_function ;;
    packed) with_prelude <<'EOF'
-- The hot string, `<game key>:hot`: 1 status | 2-14 deadline (13 digits) |
-- 15-18 seq (big-endian) | 19 owned | 20-27 scores | 28-35 the holders'
-- lengths | 36-116 cells | 117.. the holders, one after another.
local byte, sub, char = string.byte, string.sub, string.char
local nows = ms(now)
local hk = {}
for i = 1, #KEYS do hk[i] = KEYS[i] .. ':hot' end
local vals = redis.call('MGET', unpack(hk))
local games, order = {}, {}
local reply = { nows }
for i = 1, #KEYS do
  local k = KEYS[i]
  local g = games[k]
  if g == nil then
    local v = vals[i]
    if v then
      local b1, b2, b3, b4, own = byte(v, 15, 19)
      g = { v = v, st = sub(v, 1, 1), ends = sub(v, 2, 14), seq = ((b1 * 256 + b2) * 256 + b3) * 256 + b4, own = own,
        sc = { byte(v, 20, 27) }, cells = sub(v, 36, 116) }
    else g = false end
    games[k] = g
  end
  local a = 3 * i
  local s, holder, c = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local code
  if not g then code = 'unknown_game'
  else
    local si = tonumber(s)
    local off = 117
    for j = 0, si - 1 do off = off + byte(g.v, 28 + j) end
    if sub(g.v, off, off + byte(g.v, 28 + si) - 1) ~= holder then code = 'stale'
    elseif g.st ~= ST.active or nows >= g.ends then code = 'not_active'
    else
      local cell = tonumber(c)
      if byte(g.cells, cell + 1) ~= 0 then code = 'taken'
      else
        g.cells = sub(g.cells, 1, cell) .. char(si + 1) .. sub(g.cells, cell + 2)
        local score = g.sc[si + 1] + 1
        g.sc[si + 1] = score
        g.own = g.own + 1
        g.seq = g.seq + 1
        if not g.dirty then g.dirty = true; order[#order + 1] = k end
        redis.call(publish, k .. CHANNEL_SUFFIX, CAPTURED .. g.seq .. ',' .. g.ends .. ',' .. c .. ',' .. s .. ',' .. score)
        code = 'ok'
      end
    end
  end
  reply[i + 1] = code
end
if #order > 0 then
  local args = {}
  for _, k in ipairs(order) do
    local g = games[k]
    local q = g.seq
    args[#args + 1] = k .. ':hot'
    args[#args + 1] = sub(g.v, 1, 14) .. char(math.floor(q / 16777216) % 256, math.floor(q / 65536) % 256, math.floor(q / 256) % 256, q % 256, g.own)
      .. char(unpack(g.sc)) .. sub(g.v, 28, 35) .. g.cells .. sub(g.v, 117)
  end
  redis.call('MSET', unpack(args))
end
return reply
EOF
    ;;
    *) echo "unknown shape $1" >&2; exit 1 ;;
    esac
}

# The driver: fresh games, two subscribers, two senders; prints
# "<redis cpu µs/capture> <evalsha µs/capture> <answers>".
driver() {
    cat <<'EOF'
import os, socket, sys, threading

PORT, PID, SCRIPT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
GAMES, CELLS, BATCH = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])

def enc(*args):
    out = [b'*%d\r\n' % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b'$%d\r\n%s\r\n' % (len(a), a))
    return b''.join(out)

class Conn:
    def __init__(self):
        self.s = socket.create_connection(('127.0.0.1', PORT))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile('rb')
    def send(self, *args):
        self.s.sendall(enc(*args))
    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t in (b'+', b':'):
            return rest.decode()
        if t == b'-':
            raise RuntimeError(rest.decode())
        if t == b'$':
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode('latin-1')
        if t == b'*':
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError('bad reply %r' % line)
    def call(self, *args):
        self.send(*args)
        return self.read()

def key(i):
    return 'gridcap:{%08d-0000-4000-8000-000000000000}' % i

HOLDERS = ['0b7e1c9a-node-a/%d', '5d2f8e41-node-b/%d']

# Active 2-seat games as create + join + start leave them, and the packed
# shape's hot string beside each.
SETUP = r'''
local t = redis.call('TIME')
local ends = string.format('%.0f', tonumber(t[1]) * 1000 + 3600000)
for i = 1, #KEYS do
  local k, h0, h1 = KEYS[i], ARGV[2 * i - 1], ARGV[2 * i]
  redis.call('HSET', k, 'st', 'a', 'seq', 3, 'host', 0, 'maxp', 2, 'dur', 3600000, 'minp', 2, 'ends', ends, 'own', 0,
    'cells', string.rep('\0', 81), 'n0', 'bot-0', 's0', 0, 'c0', 1, 'k0', string.rep('k', 64), 'h0', h0,
    'n1', 'bot-1', 's1', 0, 'c1', 1, 'k1', string.rep('k', 64), 'h1', h1, 'code', 'ABCDEF', 'pub', '1', 'lst', 5000, 'cre', ends)
  redis.call('SET', k .. ':hot', 'a' .. ends .. string.char(0, 0, 0, 3, 0) .. string.rep('\0', 8)
    .. string.char(#h0, #h1, 0, 0, 0, 0, 0, 0) .. string.rep('\0', 81) .. h0 .. h1)
end
return 1
'''

c = Conn()
c.call('FLUSHALL')
for base in range(0, GAMES, 100):
    ids = range(base, min(base + 100, GAMES))
    args = []
    for i in ids:
        args += [HOLDERS[0] % i, HOLDERS[1] % i]
    c.call('EVAL', SETUP, len(ids), *[key(i) for i in ids], *args)
source = open(SCRIPT).read()
if source.startswith('#!lua'):
    c.call('FUNCTION', 'LOAD', 'REPLACE', source)
    CALL, STAT = ['FCALL', 'capture'], 'cmdstat_fcall:'
else:
    CALL, STAT = ['EVALSHA', c.call('SCRIPT', 'LOAD', source)], 'cmdstat_evalsha:'

subscribed = threading.Barrier(3)
def subscriber():
    s = Conn()
    for base in range(0, GAMES, 512):
        s.send('SUBSCRIBE', *[key(i) + ':ev' for i in range(base, min(base + 512, GAMES))])
    for _ in range(GAMES):
        s.read()
    subscribed.wait()
    while s.s.recv(1 << 16):
        pass
for _ in range(2):
    threading.Thread(target=subscriber, daemon=True).start()
subscribed.wait()

def cpu_ns():
    return sum(int(open('/proc/%d/task/%s/schedstat' % (PID, t)).read().split()[0])
               for t in os.listdir('/proc/%d/task' % PID))

c.call('CONFIG', 'RESETSTAT')
answers = [{}, {}]
def sender(n):
    conn = Conn()
    mine = answers[n]
    groups = GAMES // BATCH
    for cell in range(CELLS):
        seat = cell % 2
        for g in range(n, groups, 2):
            keys, args = [], []
            for i in range(g * BATCH, (g + 1) * BATCH):
                keys.append(key(i))
                args += [seat, HOLDERS[seat] % i, cell]
            for a in conn.call(*CALL, len(keys), *keys, 'PUBLISH', 120000, *args)[1:]:
                mine[a] = mine.get(a, 0) + 1
t0 = cpu_ns()
senders = [threading.Thread(target=sender, args=(n,)) for n in range(2)]
for t in senders:
    t.start()
for t in senders:
    t.join()
t1 = cpu_ns()
captures = CELLS * (GAMES // BATCH) * BATCH
usec = 0
for line in c.call('INFO', 'commandstats').splitlines():
    if line.startswith(STAT):
        usec = int(line.split('usec=')[1].split(',')[0])
total = dict(answers[0])
for a, n in answers[1].items():
    total[a] = total.get(a, 0) + n
print('%.2f %.2f %s' % ((t1 - t0) / 1e3 / captures, usec / captures,
      ','.join('%s=%d' % kv for kv in sorted(total.items()))))
EOF
}

main() {
    log "stateless floor: shapes '$SHAPES', batches '$BATCHES', $ROUNDS rounds, $GAMES games x $CELLS captures"
    redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 && { echo "something serves port $REDIS_PORT; set BENCH_REDIS_PORT" >&2; exit 1; }
    rm -f "$OUT/floor-redis.pid"
    pinned "$OUT/floor-redis.pid" "0-$(( $(nproc) - 1 ))" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save "" --appendonly no >"$OUT/floor-redis.log" 2>&1 &
    for _ in $(seq 100); do
        [[ -s "$OUT/floor-redis.pid" ]] && redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 && break
        sleep 0.05
    done
    REDIS_PID=$(cat "$OUT/floor-redis.pid")
    driver >"$OUT/floor-drive.py"
    local s
    for s in $SHAPES; do shape "$s" >"$OUT/floor-$s.lua"; done
    printf 'round\tbatch\tshape\tredis_cpu_us_per_capture\tevalsha_us_per_capture\tanswers\n' >"$OUT/stateless-floor.tsv"
    local round batch row
    for round in $(seq "$ROUNDS"); do
        for batch in $BATCHES; do
            for s in $SHAPES; do
                row=$(python3 "$OUT/floor-drive.py" "$REDIS_PORT" "$REDIS_PID" "$OUT/floor-$s.lua" "$GAMES" "$CELLS" "$batch")
                printf '%s\t%s\t%s\t%s\n' "$round" "$batch" "$s" "${row// /$'\t'}" | tee -a "$OUT/stateless-floor.tsv" >&2
            done
        done
    done
    {
        echo "# Stateless floor: Redis µs per capture by script shape and batch size (medians of $ROUNDS)"
        echo
        provenance
        echo
        echo "| batch | shape | Redis CPU µs/capture | inside EVALSHA/FCALL µs/capture (the same run) |"
        echo "| --- | --- | --- | --- |"
        tail -n +2 "$OUT/stateless-floor.tsv" | sort -t$'\t' -k2,2n -k3,3 -k4,4g | awk -F'\t' '
            function flush() { if (n) printf "| %s | %s | %.1f | %.1f |\n", b, s, cpu[int((n + 1) / 2)], ev[int((n + 1) / 2)] }
            $2 != b || $3 != s { flush(); b = $2; s = $3; n = 0 }
            { n++; cpu[n] = $4; ev[n] = $5 }
            END { flush() }'
    } >"$OUT/stateless-floor.md"
    cat "$OUT/stateless-floor.md"
}

main "$@"
