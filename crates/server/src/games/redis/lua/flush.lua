-- flush (`--redis-wait-replicas`): publishes the events the other scripts
-- queued, once the replicas acknowledged them. KEYS[i] is a game, ARGV[2 + i]
-- how many of its queued events the replicas have (its queued count as
-- answered by a script run before the node's WAIT). Events go out in the
-- order they were queued, whichever node flushes them; a count already
-- flushed (by a later call that overtook this one) publishes nothing.
for i = 1, #KEYS do
  key = KEYS[i]
  chan = key .. CHANNEL_SUFFIX
  local upto = tonumber(ARGV[2 + i])
  local done = tonumber(redis.call('HGET', key, F.published) or '0')
  if upto > done then
    local events = redis.call('LPOP', key .. QUEUE_SUFFIX, upto - done)
    if events then
      for _, event in ipairs(events) do
        redis.call(publish, chan, event)
      end
    end
    if redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, F.published, upto)
    end
  end
end
return { ms(now) }
