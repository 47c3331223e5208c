#!/usr/bin/env node
// kafkajs (pure JavaScript) scenarios. Same output protocol as compat_common.py:
// SCENARIOS / PASS / FAIL / SKIP / OBS lines and a final "N passed, M failed".
'use strict'
const crypto = require('crypto')
const { Kafka, logLevel, CompressionTypes, CompressionCodecs, ConfigResourceTypes } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4 = require('lz4js')
const xxh32 = require('lz4js/xxh32.js')
const ConfigSource = require('kafkajs/src/protocol/configSource')
const { ZstdCodec } = require('zstd-codec')

const bootstrap = process.argv[2]
if (!bootstrap) { console.error('usage: kafkajs_client.js BOOTSTRAP'); process.exit(2) }
const RID = process.env.COMPAT_RUN_ID || crypto.randomBytes(4).toString('hex')
const MISSING = process.env.COMPAT_MISSING_BOOTSTRAP || ''
const ONLY = (process.env.COMPAT_SCENARIOS || '').split(',').filter(Boolean)
const DEADLINE_MS = 1000 * Number(process.env.COMPAT_DEADLINE || 240)
const SCENARIO_MS = 1000 * Number(process.env.COMPAT_SCENARIO_TIMEOUT || 40)
const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd']

let passed = 0; let failed = 0
const done = new Set()
const out = (line) => process.stdout.write(line + '\n')
const result = (name, line, ok) => {
  if (done.has(name)) return
  done.add(name)
  if (ok === true) passed++
  if (ok === false) failed++
  out(line)
}
const fail = (name, reason) => result(name, `FAIL ${name}: ${String(reason).replace(/\s+/g, ' ').slice(0, 400)}`, false)
const obs = (s, k, v) => out(`OBS ${s} ${k}=${String(v).split(RID).join('<id>').replace(/\s/g, '_')}`)
const check = (cond, msg) => { if (!cond) throw new Error(msg) }
const name = (scenario) => `compat-kafkajs-${scenario}-${RID}`.replace(/_/g, '-')
const payload = (codec, i) => Buffer.from(`value-${i}-${codec}-` + 'abcdefgh'.repeat(40))
// The broker's error: the type of the first KafkaJSProtocolError in the cause chain (null if none, e.g. a timeout).
const protocolErrType = (e) => {
  for (let x = e; x; x = x.originalError || x.cause) { if (x.name === 'KafkaJSProtocolError' && x.type) return x.type }
  return null
}
const sourceName = (n) => n === ConfigSource.TOPIC_CONFIG ? 'DYNAMIC_TOPIC_CONFIG' : (Object.keys(ConfigSource).find(k => ConfigSource[k] === n) || String(n))
const errType = (e) => { for (let x = e; x; x = x.originalError || x.cause) { if (x.type) return x.type } return e && e.name }
const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))
const finish = () => { out(`${passed} passed, ${failed} failed`); process.exit(failed ? 1 : 0) }

// Codecs kafkajs does not ship: snappy (kafkajs-snappy, pure JS), lz4 (LZ4 frame via lz4js, pure JS),
// zstd (zstd-codec, emscripten build shipped in the npm package).
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
// lz4js writes frames without the block-independence flag, which Kafka rejects ("Dependent block stream
// is unsupported", UNKNOWN_SERVER_ERROR). A frame of a single block (input <= 4 MiB, lz4js's block size)
// is independent by construction: set FLG bit 0x20 and recompute the header checksum.
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  compress: async (encoder) => {
    const src = encoder.buffer
    if (src.length > (4 << 20)) throw new Error('lz4 shim: batch over 4 MiB would need several (dependent) blocks')
    const out = Buffer.from(lz4.compress(src))
    out[4] |= 0x20
    out[6] = (xxh32.hash(0, out, 4, 2) >> 8) & 0xff
    return out
  },
  decompress: async (buffer) => Buffer.from(lz4.decompress(buffer))
})
let zstd = null
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  compress: async (encoder) => Buffer.from(zstd.compress(encoder.buffer)),
  decompress: async (buffer) => Buffer.from(zstd.decompress(buffer))
})
const COMPRESSION = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD }

const mkKafka = (brokers) => new Kafka({
  clientId: 'compat-kafkajs',
  brokers: [brokers],
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 1000 },
  logLevel: logLevel.NOTHING
})
const kafka = mkKafka(bootstrap)
let adminClient = null
const admin = async () => {
  if (!adminClient) { adminClient = kafka.admin(); await adminClient.connect() }
  return adminClient
}
const state = {}

// No waitForLeaders: kafkajs' wait polls Metadata and gives up at once (non-retriable) on
// UNKNOWN_TOPIC_OR_PARTITION, which a fresh Kafka answers for a moment after CreateTopics succeeded (its
// metadata cache lags the controller). waitWritable waits for more than leaders anyway.
async function ensureTopic (topic, numPartitions = 1, configEntries = []) {
  const a = await admin()
  await a.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }], waitForLeaders: false, timeout: 10000 })
  await waitWritable(topic, numPartitions)
}

// Metadata naming a leader is not enough: Kafka (KRaft) updates its metadata cache before its ReplicaManager
// has created the partitions' logs, one partition after another (seen: 233 ms between the two logs of a
// 2-partition topic on a loaded machine); a Produce in that window fails with NOT_LEADER_OR_FOLLOWER for the
// partitions not yet created. Wait until ListOffsets, which the ReplicaManager answers like Produce, succeeds
// for every partition (high watermark 0 for a new topic).
async function waitWritable (topic, numPartitions, fresh = true) {
  const a = await admin()
  let last = null
  for (const end = Date.now() + 15000; Date.now() < end;) {
    try {
      const offs = await a.fetchTopicOffsets(topic)
      if (offs.length === numPartitions && (!fresh || offs.every(p => p.high === '0'))) return
      last = `ListOffsets gave ${JSON.stringify(offs)}`
    } catch (e) { last = `${errType(e)}: ${e.message}` }
    await sleep(100)
  }
  throw new Error(`${topic}: partitions not all writable within 15s (${last})`)
}

// A fresh Kafka creates __consumer_offsets (50 partitions) on the first FindCoordinator, and answers
// COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR until those partitions are loaded; the first consumer group then
// exhausts its retries (seen: produce_none FAILed "This is not the correct coordinator for this group").
// Wait (at most 30s, silently: no OBS) until a DescribeGroups succeeds and __consumer_offsets is served.
async function waitGroupCoordinator () {
  const a = await admin()
  for (const end = Date.now() + 30000; Date.now() < end;) {
    try { await a.describeGroups([`compat-kafkajs-warmup-${RID}`]); break } catch (e) { await sleep(200) }
  }
  const topics = await a.listTopics().catch(() => [])
  if (!topics.includes('__consumer_offsets')) return
  const md = await a.fetchTopicMetadata({ topics: ['__consumer_offsets'] }).catch(() => null)
  const n = md ? md.topics[0].partitions.length : 0
  if (n) await waitWritable('__consumer_offsets', n, false).catch(() => {})
}

async function withProducer (opts, fn) {
  const p = kafka.producer(Object.assign({ allowAutoTopicCreation: false, retry: { retries: 2 } }, opts))
  await p.connect()
  try { return await fn(p) } finally { await p.disconnect() }
}

// kafkajs has no group-less consumer: every read goes through a consumer group.
async function consumeGroup (groupId, topic, count, timeoutMs, opts = {}) {
  const c = kafka.consumer(Object.assign({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500, retry: { retries: 2 } }, opts))
  const got = []
  await c.connect()
  try {
    await c.subscribe({ topics: [topic], fromBeginning: true })
    let resolveDone
    const full = new Promise(resolve => { resolveDone = resolve })
    let crashed = null
    c.on(c.events.CRASH, (e) => { crashed = e.payload.error; resolveDone() })
    const enough = opts.until || ((g) => g.length >= count)
    await c.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        got.push(Object.assign({ partition }, message))
        if (enough(got)) resolveDone()
      }
    })
    await Promise.race([full, sleep(timeoutMs)])
    if (crashed && got.length < count) throw crashed
    if (opts.keep) { state.keep = c; return got }
  } finally {
    if (!opts.keep) await c.disconnect()
  }
  return got
}

const headerPairs = (h) => {
  const pairs = []
  for (const [k, v] of Object.entries(h || {})) {
    for (const x of (Array.isArray(v) ? v : [v])) pairs.push([k, x === null ? null : x.toString()])
  }
  return JSON.stringify(pairs)
}

const scenarios = []
const add = (n, fn) => scenarios.push([n, fn])

add('create_topic', async (s) => {
  const t = name('create')
  const a = await admin()
  const created = await a.createTopics({ topics: [{ topic: t, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }], waitForLeaders: false, timeout: 10000 })
  obs(s, 'created', created)
  check(created === true, 'createTopics returned false')
  await waitWritable(t, 3) // see ensureTopic
  const md = await a.fetchTopicMetadata({ topics: [t] })
  const parts = md.topics[0].partitions.length
  obs(s, 'partitions', parts)
  check(parts === 3, `expected 3 partitions, got ${parts}`)
  const again = await a.createTopics({ topics: [{ topic: t, numPartitions: 3 }], timeout: 10000 })
  obs(s, 'second_create', again) // kafkajs maps TOPIC_ALREADY_EXISTS to false
  check(again === false, 'second create of the same topic returned true')
})

for (const codec of CODECS) {
  add(`produce_${codec}`, async (s) => {
    const t = name(s)
    await ensureTopic(t)
    const msgs = []
    for (let i = 0; i < 10; i++) {
      msgs.push({ key: `key-${i}`, value: payload(codec, i), partition: 0, headers: { 'h-index': String(i), 'h-codec': codec, 'h-dup': ['a', 'b'] } })
    }
    const md = await withProducer({}, p => p.send({ topic: t, compression: COMPRESSION[codec], messages: msgs, acks: -1 }))
    obs(s, 'base_offset', md[0].baseOffset)
    obs(s, 'error_code', md[0].errorCode)
    check(md[0].errorCode === 0 && String(md[0].baseOffset) === '0', `produce: errorCode ${md[0].errorCode} baseOffset ${md[0].baseOffset}, expected 0/0`)
    const got = await consumeGroup(name(s + '-reader'), t, 10, 20000)
    check(got.length === 10, `read back ${got.length} of 10`)
    const arrived = got.map(m => String(m.offset)).join(',')
    check(arrived === '0,1,2,3,4,5,6,7,8,9', `read back offsets ${arrived} (arrival order), expected 0..9 in order`)
    got.sort((x, y) => Number(x.offset) - Number(y.offset))
    got.forEach((m, i) => {
      check(m.key.toString() === `key-${i}`, `key mismatch at ${m.offset}`)
      check(m.value.equals(payload(codec, i)), `value mismatch at ${m.offset}`)
      const want = JSON.stringify([['h-index', String(i)], ['h-codec', codec], ['h-dup', 'a'], ['h-dup', 'b']])
      check(headerPairs(m.headers) === want, `headers mismatch at ${m.offset}: ${headerPairs(m.headers)}`)
    })
    obs(s, 'read_offsets', got.map(m => m.offset).join(','))
  })
}

add('group_consume', async (s) => {
  const t = name('group'); const g = name('group-g')
  Object.assign(state, { group: g, groupTopic: t })
  await ensureTopic(t, 2) // waits until both partitions are writable, not just until Metadata names leaders
  // One Produce per partition: kafkajs fails a whole Produce request if any partition in it errors and then
  // re-sends all of it, so a partition that had been appended gets its records twice (seen on Kafka: partition 1
  // got k1,k3,k5 at 0..2 and again at 3..5 because partition 0's log did not exist yet). Alone in its request,
  // a partition is re-sent only after an error for it, i.e. when nothing was appended.
  const produced = []
  await withProducer({}, async p => {
    for (const part of [0, 1]) {
      const idx = [0, 1, 2, 3, 4, 5].filter(i => i % 2 === part)
      const md = await p.send({ topic: t, acks: -1, messages: idx.map(i => ({ key: `k${i}`, value: `v${i}`, partition: part })) })
      const r = md.map(x => `${x.partition}:${x.errorCode}:${x.baseOffset}`).join(',')
      obs(s, `produce_p${part}`, r)
      check(r === `${part}:0:0`, `produce to partition ${part}: ${r} (partition:errorCode:baseOffset), expected ${part}:0:0`)
      idx.forEach((i, n) => produced.push(`${part}:${n}:k${i}:v${i}`))
    }
  })
  const offs = (await (await admin()).fetchTopicOffsets(t)).sort((x, y) => x.partition - y.partition).map(p => `${p.partition}:${p.low}-${p.high}`).join(',')
  obs(s, 'offsets', offs)
  check(offs === '0:0-3,1:0-3', `partition offsets (low-high) ${offs}, expected 0:0-3,1:0-3`)
  const want = produced.sort()
  const key = (m) => `${m.partition}:${m.offset}:${m.key}:${m.value}`
  // Read until every produced record arrived (not just any 6), then linger to catch duplicates or extras.
  const got = await consumeGroup(g, t, 6, 25000, { keep: true, until: (g) => want.every(w => g.some(m => key(m) === w)) })
  await sleep(1500)
  const seen = got.map(key).sort()
  obs(s, 'records', got.map(m => `${m.partition}:${m.offset}:${m.key}`).sort().join(','))
  check(JSON.stringify(seen) === JSON.stringify(want), `group consumer read ${seen.length} records [${seen}], expected exactly [${want}] each once`)
})

add('commit', async (s) => {
  const c = state.keep
  check(c, 'no group consumer (group_consume failed)')
  try {
    await c.commitOffsets([0, 1].map(p => ({ topic: state.groupTopic, partition: p, offset: '3' })))
    const res = await (await admin()).fetchOffsets({ groupId: state.group, topics: [state.groupTopic] })
    const offs = res[0].partitions.sort((a, b) => a.partition - b.partition).map(p => `${p.partition}:${p.offset}`).join(',')
    obs(s, 'committed', offs)
    check(offs === '0:3,1:3', `committed offsets read back as ${offs}`)
  } finally {
    await c.disconnect(); state.keep = null
  }
})

add('group_restart', async (s) => {
  const t = name('restart'); const g = name('restart-g')
  await ensureTopic(t)
  await withProducer({}, p => p.send({ topic: t, messages: [...Array(10).keys()].map(i => ({ key: `k${i}`, value: `v${i}`, partition: 0 })) }))
  // First member: read 4, commit offset 4, leave.
  const c = kafka.consumer({ groupId: g, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500, retry: { retries: 2 } })
  await c.connect()
  let n = 0
  try {
    await c.subscribe({ topics: [t], fromBeginning: true })
    let resolveDone; const four = new Promise(resolve => { resolveDone = resolve })
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const m of batch.messages) {
          if (n >= 4) break
          n++; resolveOffset(m.offset)
          if (n === 4) { await c.commitOffsets([{ topic: t, partition: 0, offset: '4' }]); resolveDone() }
        }
      }
    })
    await Promise.race([four, sleep(20000)])
  } finally { await c.disconnect() }
  check(n === 4, `first consumer got ${n}`)
  const got = await consumeGroup(g, t, 6, 20000)
  await sleep(200)
  const offs = got.map(m => Number(m.offset))
  obs(s, 'second_offsets', offs.join(','))
  check(offs.join(',') === '4,5,6,7,8,9', `restarted consumer read ${offs}, expected 4..9`)
})

add('seek_timestamp', async (s) => {
  const t = name('ts')
  await ensureTopic(t)
  const base = (Math.floor(Date.now() / 1000) - 60) * 1000
  await withProducer({}, p => p.send({ topic: t, messages: [0, 1, 2].map(i => ({ key: `k${i}`, value: 'v', partition: 0, timestamp: String(base + 1000 * i) })) }))
  const a = await admin()
  const res = {}
  for (const [label, ts] of [['before_first', base - 5000], ['mid', base + 500], ['exact', base + 2000], ['after_last', base + 60000]]) {
    const r = await a.fetchTopicOffsetsByTimestamp(t, ts)
    res[label] = r[0].offset
    obs(s, label, r[0].offset)
  }
  // Kafka answers offset -1 for a timestamp past the last record; kafkajs then substitutes the high watermark.
  const want = { before_first: '0', mid: '1', exact: '2', after_last: '3' }
  check(JSON.stringify(res) === JSON.stringify(want), `fetchTopicOffsetsByTimestamp gave ${JSON.stringify(res)}, expected ${JSON.stringify(want)}`)
  // Seek a group consumer to each looked-up offset and read the record there. It first reads to the end,
  // then seeks backwards (exact, mid, before_first), so a record at the target offset can only come from the seek.
  const c = kafka.consumer({ groupId: name('ts-g'), sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500, retry: { retries: 2 } })
  await c.connect()
  try {
    await c.subscribe({ topics: [t], fromBeginning: true })
    let waiter = null
    const waitFor = (offset) => new Promise(resolve => { waiter = { offset: String(offset), resolve } })
    const wait = (p, label) => Promise.race([p, sleep(15000).then(() => { throw new Error(`no record at offset ${waiter && waiter.offset} (${label}) within 15s`) })])
    let crashed = null
    c.on(c.events.CRASH, (e) => { crashed = e.payload.error })
    const atEnd = waitFor(2)
    await c.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        if (waiter && String(message.offset) === waiter.offset) { const w = waiter; waiter = null; w.resolve(message) }
      }
    })
    await wait(atEnd, 'initial read to the end')
    const keyAt = { 0: 'k0', 1: 'k1', 2: 'k2' }
    for (const label of ['exact', 'mid', 'before_first']) {
      const off = res[label]
      const p = waitFor(off)
      c.seek({ topic: t, partition: 0, offset: off })
      const m = await wait(p, `seek ${label}`)
      check(!crashed, `consumer crashed: ${crashed}`)
      const delta = Number(m.timestamp) - base
      obs(s, `${label}_read`, `${m.offset}:${m.key}:${delta}`)
      check(m.key.toString() === keyAt[off] && delta === 1000 * Number(off), `after seek to ${off} (${label}) read ${m.offset}:${m.key} at base+${delta}ms, expected ${keyAt[off]} at base+${1000 * Number(off)}ms`)
    }
  } finally { await c.disconnect() }
})

add('list_groups', async (s) => {
  check(state.group, 'no group from group_consume')
  const r = await (await admin()).listGroups()
  const g = r.groups.find(x => x.groupId === state.group)
  check(g, `group not in ListGroups (${r.groups.length} groups)`)
  obs(s, 'protocol_type', g.protocolType)
})

add('describe_groups', async (s) => {
  check(state.group, 'no group from group_consume')
  const r = await (await admin()).describeGroups([state.group])
  const g = r.groups[0]
  obs(s, 'state', g.state); obs(s, 'protocol_type', g.protocolType); obs(s, 'members', g.members.length)
  check(g.errorCode === 0, `errorCode ${g.errorCode}`)
  check(g.state === 'Empty', `state ${g.state}, expected Empty`)
  check(g.protocolType === 'consumer', `protocolType ${g.protocolType}, expected consumer`)
})

add('describe_configs', async (s) => {
  const t = name('create')
  const r = await (await admin()).describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: t }], includeSynonyms: false })
  const res = r.resources[0]
  check(res.errorCode === 0, `errorCode ${res.errorCode}`)
  const cfg = Object.fromEntries(res.configEntries.map(e => [e.configName, e]))
  obs(s, 'count_gt_10', res.configEntries.length > 10)
  check(cfg['retention.ms'], `retention.ms missing (${res.configEntries.length} configs)`)
  obs(s, 'retention.ms', cfg['retention.ms'].configValue)
  for (const k of ['cleanup.policy', 'max.message.bytes']) if (cfg[k]) obs(s, k, cfg[k].configValue)
  check(cfg['retention.ms'].configValue === '3600000', `retention.ms = ${cfg['retention.ms'].configValue}`)
  // kafkajs decodes DescribeConfigs v1+ config_source as configSource (1 = TOPIC_CONFIG, the wire's DYNAMIC_TOPIC_CONFIG).
  const rsrc = sourceName(cfg['retention.ms'].configSource)
  obs(s, 'retention.ms.source', rsrc)
  check(rsrc === 'DYNAMIC_TOPIC_CONFIG', `retention.ms source ${rsrc}, expected DYNAMIC_TOPIC_CONFIG`)
  check(cfg['cleanup.policy'], 'cleanup.policy missing')
  const csrc = sourceName(cfg['cleanup.policy'].configSource)
  obs(s, 'cleanup.policy.source', csrc)
  check(cfg['cleanup.policy'].configValue === 'delete', `cleanup.policy = ${cfg['cleanup.policy'].configValue}`)
  check(csrc === 'DEFAULT_CONFIG', `cleanup.policy source ${csrc}, expected DEFAULT_CONFIG`)
})

add('delete_topic', async (s) => {
  const t = name('create')
  const a = await admin()
  await a.deleteTopics({ topics: [t], timeout: 10000 })
  let gone = false
  for (let i = 0; i < 50 && !gone; i++) { gone = !(await a.listTopics()).includes(t); if (!gone) await sleep(200) }
  obs(s, 'gone', gone)
  check(gone, 'topic still listed 10s after delete')
  try {
    await a.deleteTopics({ topics: [t], timeout: 10000 })
    throw new Error('deleting a deleted topic succeeded')
  } catch (e) {
    const type = errType(e)
    obs(s, 'second_delete_error', type)
    check(/UNKNOWN_TOPIC_OR_PARTITION/.test(type + e.message), `second delete: ${e.message}`)
  }
})

add('idempotent_producer', async (s) => {
  const t = name('idem')
  await ensureTopic(t)
  const md = await withProducer({ idempotent: true, maxInFlightRequests: 1 },
    p => p.send({ topic: t, acks: -1, messages: [0, 1, 2, 3, 4].map(i => ({ key: `k${i}`, value: `v${i}`, partition: 0 })) }))
  obs(s, 'base_offset', md[0].baseOffset)
  const off = await (await admin()).fetchTopicOffsets(t)
  obs(s, 'high', off[0].high)
  check(off[0].high === '5', `high watermark ${off[0].high}, expected 5`)
  const got = await consumeGroup(name('idem-reader'), t, 5, 20000)
  await sleep(0)
  const offs = got.map(m => String(m.offset)).join(',')
  obs(s, 'offsets', offs)
  obs(s, 'values', got.map(m => m.value.toString()).join(','))
  check(offs === '0,1,2,3,4', `read back offsets ${offs}, expected 0..4 each once`)
  check(got.every((m, i) => m.value.toString() === `v${i}` && m.key.toString() === `k${i}`), `records ${got.map(m => `${m.key}=${m.value}`)}`)
})

add('missing_topic', async (s) => {
  if (!MISSING) return 'COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)'
  const k = mkKafka(MISSING)
  const p = k.producer({ allowAutoTopicCreation: false, retry: { retries: 1 } })
  await p.connect()
  try {
    await p.send({ topic: name('missing'), messages: [{ value: 'x' }] })
    throw new Error('produce to a missing topic succeeded (is auto-create off?)')
  } catch (e) {
    const type = errType(e)
    obs(s, 'error', type)
    check(/UNKNOWN_TOPIC_OR_PARTITION/.test(type + ' ' + e.message) || /does not host this topic/.test(e.message), `unexpected error ${type}: ${e.message}`)
    const proto = protocolErrType(e)
    obs(s, 'protocol_error', proto)
    check(proto === 'UNKNOWN_TOPIC_OR_PARTITION', `expected a KafkaJSProtocolError UNKNOWN_TOPIC_OR_PARTITION, got ${e.name} ${type}: ${e.message}`)
  } finally { await p.disconnect() }
})

add('oversize_record', async (s) => {
  const t = name('big')
  await ensureTopic(t, 1, [{ name: 'max.message.bytes', value: '10000' }])
  try {
    await withProducer({}, p => p.send({ topic: t, messages: [{ value: crypto.randomBytes(20000), partition: 0 }] }))
    throw new Error('20000-byte record accepted by a topic with max.message.bytes=10000')
  } catch (e) {
    const type = errType(e)
    obs(s, 'error', type)
    check(type === 'MESSAGE_TOO_LARGE', `expected MESSAGE_TOO_LARGE, got ${type}: ${e.message}`)
  }
})

async function main () {
  const selected = scenarios.filter(([n]) => ONLY.length === 0 || ONLY.includes(n))
  out('# kafkajs ' + require('kafkajs/package.json').version)
  out('SCENARIOS ' + selected.map(x => x[0]).join(' '))
  setTimeout(() => { for (const [n] of selected) fail(n, 'watchdog: program deadline reached'); finish() }, DEADLINE_MS).unref()
  zstd = await new Promise(resolve => ZstdCodec.run(z => resolve(new z.Simple())))
  try {
    await Promise.race([(await admin()).listTopics(), sleep(10000).then(() => { throw new Error('metadata timeout') })])
  } catch (e) {
    for (const [n] of selected) fail(n, `preflight against ${bootstrap} failed (broker down?): ${e.message}`)
    finish()
  }
  await waitGroupCoordinator()
  for (const [n, fn] of selected) {
    let timer
    try {
      const r = await Promise.race([fn(n), new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${SCENARIO_MS / 1000}s`)), SCENARIO_MS) })])
      if (typeof r === 'string') result(n, `SKIP ${n}: ${r}`, null)
      else result(n, `PASS ${n}`, true)
    } catch (e) {
      fail(n, `${e.name}: ${e.message}`)
    } finally { clearTimeout(timer) }
  }
  finish()
}
process.on('unhandledRejection', (e) => { process.stderr.write('unhandled: ' + (e && e.stack) + '\n') })
main()
