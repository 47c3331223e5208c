// Sarama scenarios (github.com/IBM/sarama from the Go module proxy, pinned in go.mod).
// Usage: sarama-compat [-version default|max|X.Y.Z] BOOTSTRAP
// Sarama sends the request versions implied by Config.Version (lowered to the broker's ApiVersions
// maximum, never raised to its minimum), so the runner runs this program twice: with Sarama's own
// default Config.Version (2.8.0 in v1.61.1) and with sarama.MaxVersion. Any other Kafka version can
// be given for probing (e.g. -version 0.10.2.0); the matrix uses only default and max.
// Nothing is skipped by a table: when a request version the library sends at this Config.Version is
// one Kafka 4 no longer serves, the broker's refusal (UNSUPPORTED_VERSION, or the connection close
// Kafka does for an unsupported request version) is observed and reported as
// `SKIP name: refused by the broker: ...` with `OBS name refused=...`, so compare mode checks that
// every broker refuses it the same way. (Sarama raises the same UNSUPPORTED_VERSION itself when the
// broker's ApiVersions lacks the API, or when Config.Version is below the request's minimum; the
// latter never happens at default/max.)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

var (
	bootstrap string
	missing   = os.Getenv("COMPAT_MISSING_BOOTSTRAP")
	rid       = os.Getenv("COMPAT_RUN_ID")
	client    string
	version   sarama.KafkaVersion
	mu        sync.Mutex
	done      = map[string]bool{}
	passed    int
	failed    int
	state     = map[string]string{}
	stateMu   sync.Mutex
)

// oldVersion is the Config.Version of the zstd_old_* scenarios: Sarama sends Produce v6 and
// Fetch v8 there (produce_set.go, consumer.go), below zstd's Produce v7 / Fetch v10.
var oldVersion = sarama.V2_0_0_0

// Kafka's error names, from the `// Errors.NAME` comments of sarama's errors.go.
var errNames = map[int16]string{
	-1: "UNKNOWN_SERVER_ERROR", 0: "NONE", 1: "OFFSET_OUT_OF_RANGE", 2: "CORRUPT_MESSAGE",
	3: "UNKNOWN_TOPIC_OR_PARTITION", 4: "INVALID_FETCH_SIZE", 5: "LEADER_NOT_AVAILABLE",
	6: "NOT_LEADER_OR_FOLLOWER", 7: "REQUEST_TIMED_OUT", 8: "BROKER_NOT_AVAILABLE", 9: "REPLICA_NOT_AVAILABLE",
	10: "MESSAGE_TOO_LARGE", 11: "STALE_CONTROLLER_EPOCH", 12: "OFFSET_METADATA_TOO_LARGE",
	13: "NETWORK_EXCEPTION", 14: "COORDINATOR_LOAD_IN_PROGRESS", 15: "COORDINATOR_NOT_AVAILABLE",
	16: "NOT_COORDINATOR", 17: "INVALID_TOPIC_EXCEPTION", 18: "RECORD_LIST_TOO_LARGE",
	19: "NOT_ENOUGH_REPLICAS", 20: "NOT_ENOUGH_REPLICAS_AFTER_APPEND", 21: "INVALID_REQUIRED_ACKS",
	22: "ILLEGAL_GENERATION", 23: "INCONSISTENT_GROUP_PROTOCOL", 24: "INVALID_GROUP_ID",
	25: "UNKNOWN_MEMBER_ID", 26: "INVALID_SESSION_TIMEOUT", 27: "REBALANCE_IN_PROGRESS",
	28: "INVALID_COMMIT_OFFSET_SIZE", 29: "TOPIC_AUTHORIZATION_FAILED", 30: "GROUP_AUTHORIZATION_FAILED",
	31: "CLUSTER_AUTHORIZATION_FAILED", 32: "INVALID_TIMESTAMP", 33: "UNSUPPORTED_SASL_MECHANISM",
	34: "ILLEGAL_SASL_STATE", 35: "UNSUPPORTED_VERSION", 36: "TOPIC_ALREADY_EXISTS", 37: "INVALID_PARTITIONS",
	38: "INVALID_REPLICATION_FACTOR", 39: "INVALID_REPLICA_ASSIGNMENT", 40: "INVALID_CONFIG",
	41: "NOT_CONTROLLER", 42: "INVALID_REQUEST", 43: "UNSUPPORTED_FOR_MESSAGE_FORMAT", 44: "POLICY_VIOLATION",
	45: "OUT_OF_ORDER_SEQUENCE_NUMBER", 46: "DUPLICATE_SEQUENCE_NUMBER", 47: "INVALID_PRODUCER_EPOCH",
	48: "INVALID_TXN_STATE", 49: "INVALID_PRODUCER_ID_MAPPING", 50: "INVALID_TRANSACTION_TIMEOUT",
	51: "CONCURRENT_TRANSACTIONS", 52: "TRANSACTION_COORDINATOR_FENCED",
	53: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", 54: "SECURITY_DISABLED", 55: "OPERATION_NOT_ATTEMPTED",
	56: "KAFKA_STORAGE_ERROR", 57: "LOG_DIR_NOT_FOUND", 58: "SASL_AUTHENTICATION_FAILED",
	59: "UNKNOWN_PRODUCER_ID", 60: "REASSIGNMENT_IN_PROGRESS", 61: "DELEGATION_TOKEN_AUTH_DISABLED",
	62: "DELEGATION_TOKEN_NOT_FOUND", 63: "DELEGATION_TOKEN_OWNER_MISMATCH",
	64: "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", 65: "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
	66: "DELEGATION_TOKEN_EXPIRED", 67: "INVALID_PRINCIPAL_TYPE", 68: "NON_EMPTY_GROUP",
	69: "GROUP_ID_NOT_FOUND", 70: "FETCH_SESSION_ID_NOT_FOUND", 71: "INVALID_FETCH_SESSION_EPOCH",
	72: "LISTENER_NOT_FOUND", 73: "TOPIC_DELETION_DISABLED", 74: "FENCED_LEADER_EPOCH",
	75: "UNKNOWN_LEADER_EPOCH", 76: "UNSUPPORTED_COMPRESSION_TYPE", 77: "STALE_BROKER_EPOCH",
	78: "OFFSET_NOT_AVAILABLE", 79: "MEMBER_ID_REQUIRED", 80: "PREFERRED_LEADER_NOT_AVAILABLE",
	81: "GROUP_MAX_SIZE_REACHED", 82: "FENCED_INSTANCE_ID", 83: "ELIGIBLE_LEADERS_NOT_AVAILABLE",
	84: "ELECTION_NOT_NEEDED", 85: "NO_REASSIGNMENT_IN_PROGRESS", 86: "GROUP_SUBSCRIBED_TO_TOPIC",
	87: "INVALID_RECORD", 88: "UNSTABLE_OFFSET_COMMIT", 89: "THROTTLING_QUOTA_EXCEEDED", 90: "PRODUCER_FENCED",
	95: "INVALID_UPDATE_VERSION",
}

type skip string

func (s skip) Error() string { return string(s) }

func out(line string) { mu.Lock(); fmt.Println(line); mu.Unlock() }

func result(name, line string, ok int) {
	mu.Lock()
	defer mu.Unlock()
	if done[name] {
		return
	}
	done[name] = true
	if ok > 0 {
		passed++
	} else if ok < 0 {
		failed++
	}
	fmt.Println(line)
}

func clean(reason interface{}) string {
	r := strings.Join(strings.Fields(fmt.Sprint(reason)), " ")
	if len(r) > 400 {
		r = r[:400]
	}
	return r
}

func fail(name string, reason interface{}) { result(name, "FAIL "+name+": "+clean(reason), -1) }

func obs(s, k string, v interface{}) {
	val := strings.ReplaceAll(strings.ReplaceAll(fmt.Sprint(v), rid, "<id>"), " ", "_")
	out(fmt.Sprintf("OBS %s %s=%s", s, k, strings.ReplaceAll(val, "\n", "_")))
}

func finish() {
	mu.Lock()
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	mu.Unlock()
	if failed > 0 {
		os.Exit(1)
	}
	os.Exit(0)
}

func check(cond bool, format string, a ...interface{}) {
	if !cond {
		panic(fmt.Errorf(format, a...))
	}
}

func must(err error, what string) {
	if err != nil {
		panic(fmt.Errorf("%s: %w", what, err))
	}
}

func setState(k, v string) { stateMu.Lock(); state[k] = v; stateMu.Unlock() }
func getState(k string) string {
	stateMu.Lock()
	defer stateMu.Unlock()
	return state[k]
}

// name is compat-<client>-<label>-<runid>.
func name(label string) string {
	return strings.ReplaceAll(fmt.Sprintf("compat-%s-%s-%s", client, label, rid), "_", "-")
}

func payload(codec string, i int) []byte {
	return []byte(fmt.Sprintf("value-%d-%s-", i, codec) + strings.Repeat("abcdefgh", 40))
}

// kerr extracts the Kafka error code of err (through ProducerErrors, TopicError, ... wrappers).
func kerr(err error) (sarama.KError, bool) {
	if err == nil {
		return sarama.ErrNoError, true
	}
	var pes sarama.ProducerErrors
	if errors.As(err, &pes) && len(pes) > 0 {
		return kerr(pes[0].Err)
	}
	var ke sarama.KError
	if errors.As(err, &ke) {
		return ke, true
	}
	return 0, false
}

// errName is the Kafka name of err's error code (NONE for nil), else the error text.
func errName(err error) string {
	if k, ok := kerr(err); ok {
		if n, ok := errNames[int16(k)]; ok {
			return n
		}
		return fmt.Sprintf("ERROR_%d", int16(k))
	}
	return "not-a-kafka-error:" + clean(err)
}

// refusal tells whether err is the broker refusing the request version Sarama sent:
// UNSUPPORTED_VERSION (from the broker, or from Sarama when the broker's ApiVersions omits the
// API), or the connection close Kafka does for a request version it does not serve.
func refusal(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	if k, ok := kerr(err); ok && k == sarama.ErrUnsupportedVersion {
		return "UNSUPPORTED_VERSION", true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		return "closed", true
	}
	s := err.Error()
	for _, m := range []string{"EOF", "connection reset by peer", "broken pipe"} {
		if strings.Contains(s, m) {
			return "closed", true
		}
	}
	return "", false
}

// noRefusal re-raises err when it is a version refusal, so the scenario reports it as one.
func noRefusal(err error, what string) {
	if _, ok := refusal(err); ok {
		panic(fmt.Errorf("%s: %w", what, err))
	}
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = version
	c.ClientID = "compat-sarama"
	c.Net.DialTimeout = 5 * time.Second
	c.Net.ReadTimeout = 10 * time.Second
	c.Net.WriteTimeout = 10 * time.Second
	c.Metadata.Retry.Max = 3
	c.Metadata.Retry.Backoff = 200 * time.Millisecond
	c.Producer.Return.Successes = true
	// acks=all: the broker answers after the write, when the records are visible to ListOffsets.
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Retry.Max = 2
	c.Producer.Retry.Backoff = 200 * time.Millisecond
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Timeout = 10 * time.Second
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 1 * time.Second
	c.Consumer.MaxWaitTime = 500 * time.Millisecond
	return c
}

func newClient(conf *sarama.Config) sarama.Client {
	cl, err := sarama.NewClient([]string{bootstrap}, conf)
	must(err, "NewClient")
	return cl
}

func admin() sarama.ClusterAdmin {
	a, err := sarama.NewClusterAdmin([]string{bootstrap}, config())
	must(err, "NewClusterAdmin")
	return a
}

// partitionsOf asks Metadata directly (ClusterAdmin.ListTopics also sends DescribeConfigs);
// 0 when the topic is not in the metadata.
func partitionsOf(t string) int {
	cl := newClient(config())
	defer cl.Close()
	ts, err := cl.Topics()
	must(err, "Metadata")
	for _, x := range ts {
		if x == t {
			ps, err := cl.Partitions(t)
			must(err, "Metadata partitions")
			return len(ps)
		}
	}
	return 0
}

func waitTopic(t string, present bool) bool {
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		if (partitionsOf(t) > 0) == present {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func ensureTopic(t string, partitions int32, configs map[string]*string) {
	a := admin()
	defer a.Close()
	err := a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}, false)
	if k, ok := kerr(err); !ok || (k != sarama.ErrNoError && k != sarama.ErrTopicAlreadyExists) {
		must(err, "CreateTopics "+t)
	}
	check(waitTopic(t, true), "topic %s not in metadata", t)
}

func produce(conf *sarama.Config, msgs []*sarama.ProducerMessage) ([]int64, error) {
	p, err := sarama.NewSyncProducer([]string{bootstrap}, conf)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if err := p.SendMessages(msgs); err != nil {
		return nil, err
	}
	var offs []int64
	for _, m := range msgs {
		offs = append(offs, m.Offset)
	}
	return offs, nil
}

func joinOffsets(offs []int64) string {
	var s []string
	for _, o := range offs {
		s = append(s, fmt.Sprint(o))
	}
	return strings.Join(s, ",")
}

func seq(a, b int) string {
	var s []string
	for i := a; i < b; i++ {
		s = append(s, fmt.Sprint(i))
	}
	return strings.Join(s, ",")
}

// readPartition reads up to n records of t/p from offset (plain consumer, no group), waiting at
// most wait for them; a consumer error ends it.
func readPartition(conf *sarama.Config, t string, p int32, n int, offset int64, wait time.Duration) ([]*sarama.ConsumerMessage, error) {
	c, err := sarama.NewConsumer([]string{bootstrap}, conf)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	pc, err := c.ConsumePartition(t, p, offset)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	var got []*sarama.ConsumerMessage
	timeout := time.After(wait)
	for len(got) < n {
		select {
		case m := <-pc.Messages():
			got = append(got, m)
		case e := <-pc.Errors():
			return got, e
		case <-timeout:
			return got, nil
		}
	}
	return got, nil
}

func mustRead(t string, p int32, n int, offset int64) []*sarama.ConsumerMessage {
	got, err := readPartition(config(), t, p, n, offset, 15*time.Second)
	must(err, "consume")
	return got
}

func kv(i int, p int32, t string) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: t, Partition: p, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))}
}

// groupHandler collects the messages of a consumer group session and marks those it keeps (up to limit).
type groupHandler struct {
	mu      sync.Mutex
	got     []*sarama.ConsumerMessage
	claims  map[int32]bool
	want    int // reached is closed once want records are in
	limit   int // full is closed once limit records are in (none beyond are kept)
	reached chan struct{}
	full    chan struct{}
	once    sync.Once
	once2   sync.Once
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	for _, ps := range sess.Claims() {
		for _, p := range ps {
			h.claims[p] = true
		}
	}
	h.mu.Unlock()
	return nil
}
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		if len(h.got) < h.limit {
			h.got = append(h.got, m)
			sess.MarkMessage(m, "")
		}
		if len(h.got) >= h.want {
			h.once2.Do(func() { close(h.reached) })
		}
		if len(h.got) >= h.limit {
			h.once.Do(func() { close(h.full) })
		}
		h.mu.Unlock()
	}
	return nil
}

// groupRead joins group g, reads want records (or until timeout), then waits up to linger for more
// (keeping at most limit), and closes the group (Close commits the marked offsets and leaves the
// group). Returns the records and the claimed partitions.
func groupRead(g, t string, want, limit int, timeout, linger time.Duration) ([]*sarama.ConsumerMessage, []int32) {
	cg, err := sarama.NewConsumerGroup([]string{bootstrap}, g, config())
	must(err, "NewConsumerGroup")
	h := &groupHandler{want: want, limit: limit, reached: make(chan struct{}), full: make(chan struct{}), claims: map[int32]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{t}, h); err != nil {
				errc <- err
				return
			}
		}
	}()
	var cerr error
	select {
	case <-h.reached:
		select {
		case <-h.full:
		case <-time.After(linger):
		}
	case cerr = <-errc:
	case e := <-cg.Errors():
		cerr = e
	case <-time.After(timeout):
	}
	cancel()
	closed := make(chan error, 1)
	go func() { closed <- cg.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if cerr != nil && len(h.got) < want {
		panic(fmt.Errorf("consumer group: %w", cerr))
	}
	var ps []int32
	for p := range h.claims {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return h.got, ps
}

func codecOf(c string) sarama.CompressionCodec {
	return map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}[c]
}

func headersOf(m *sarama.ConsumerMessage) string {
	var hs []string
	for _, h := range m.Headers {
		hs = append(hs, string(h.Key)+"="+string(h.Value))
	}
	return strings.Join(hs, ",")
}

func sProduce(codec string) func(string) {
	return func(s string) {
		t := name(s)
		ensureTopic(t, 1, nil)
		conf := config()
		conf.Producer.Compression = codecOf(codec)
		var msgs []*sarama.ProducerMessage
		for i := 0; i < 10; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: t, Partition: 0, Key: sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
				Value: sarama.ByteEncoder(payload(codec, i)), Headers: []sarama.RecordHeader{
					{Key: []byte("h-index"), Value: []byte(fmt.Sprint(i))}, {Key: []byte("h-codec"), Value: []byte(codec)},
					{Key: []byte("h-dup"), Value: []byte("a")}, {Key: []byte("h-dup"), Value: []byte("b")}}})
		}
		offs, err := produce(conf, msgs)
		obs(s, "produce_error", errName(err))
		must(err, "produce")
		obs(s, "offsets", joinOffsets(offs))
		check(joinOffsets(offs) == seq(0, 10), "produced at offsets %v, expected 0..9", offs)
		got := mustRead(t, 0, 10, 0)
		check(len(got) == 10, "read back %d of 10", len(got))
		var ro []int64
		for i, m := range got {
			check(m.Offset == int64(i), "record %d read at offset %d", i, m.Offset)
			check(string(m.Key) == fmt.Sprintf("key-%d", i), "key mismatch at %d: %q", m.Offset, m.Key)
			check(string(m.Value) == string(payload(codec, i)), "value mismatch at %d", m.Offset)
			want := fmt.Sprintf("h-index=%d,h-codec=%s,h-dup=a,h-dup=b", i, codec)
			check(headersOf(m) == want, "headers mismatch at %d: %v", m.Offset, headersOf(m))
			ro = append(ro, m.Offset)
		}
		obs(s, "read_offsets", joinOffsets(ro))
		obs(s, "records_ok", len(got))
	}
}

// sZstdOldProduce: a zstd record batch in Produce v6 (Sarama's version at Config.Version 2.0.0)
// must be refused with UNSUPPORTED_COMPRESSION_TYPE (zstd needs Produce v7+), and nothing written.
// Sarama's producer refuses zstd below Config.Version 2.1 by itself (config validation), so the
// request is built with Sarama's ProduceRequest/RecordBatch and sent with Broker.Produce.
func sZstdOldProduce(s string) {
	t := name(s)
	ensureTopic(t, 1, nil)
	conf := config()
	conf.Version = oldVersion
	cl := newClient(conf)
	defer cl.Close()
	b, err := cl.Leader(t, 0)
	must(err, "Leader")
	now := time.Now().Truncate(time.Millisecond)
	batch := &sarama.RecordBatch{Version: 2, Codec: sarama.CompressionZSTD, CompressionLevel: sarama.CompressionLevelDefault,
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, LastOffsetDelta: 2}
	for i := 0; i < 3; i++ {
		batch.Records = append(batch.Records, &sarama.Record{OffsetDelta: int64(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: payload("zstd", i)})
	}
	req := &sarama.ProduceRequest{Version: 6, RequiredAcks: sarama.WaitForAll, Timeout: 10000}
	req.AddBatch(t, 0, batch)
	resp, err := b.Produce(req)
	must(err, "Produce v6")
	obs(s, "produce_version", req.Version)
	blk := resp.GetBlock(t, 0)
	check(blk != nil, "no partition in the Produce response")
	obs(s, "error", errName(blk.Err))
	check(blk.Err == sarama.ErrUnsupportedCompressionType, "zstd in Produce v%d answered %s, expected UNSUPPORTED_COMPRESSION_TYPE", req.Version, errName(blk.Err))
	end, err := cl.GetOffset(t, 0, sarama.OffsetNewest)
	must(err, "ListOffsets latest")
	obs(s, "end_offset", end)
	check(end == 0, "end offset %d after a refused produce, expected 0", end)
}

// sZstdOldFetch: zstd batches produced at this variant's Config.Version (Produce v7+), then read
// by a consumer at Config.Version 2.0.0, which sends Fetch v8 (consumer.go). Before 4.0 Kafka
// refused that with UNSUPPORTED_COMPRESSION_TYPE (a check on the topic's compression.type=zstd and
// Fetch < v10); Kafka 4.x dropped it along with down-conversion (4.4's only
// UNSUPPORTED_COMPRESSION_TYPE for records is ProduceRequest's, Produce < v7), and with the default
// compression.type=producer it never applied to zstd batches. So Fetch v8 gets the zstd batches
// as they are: the scenario asserts the 3 records come back intact at offsets 0..2.
func sZstdOldFetch(s string) {
	t := name(s)
	ensureTopic(t, 1, nil)
	conf := config()
	conf.Producer.Compression = sarama.CompressionZSTD
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 3; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: t, Partition: 0, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.ByteEncoder(payload("zstd", i))})
	}
	offs, err := produce(conf, msgs)
	must(err, "zstd produce at Config.Version "+version.String())
	obs(s, "offsets", joinOffsets(offs))
	check(joinOffsets(offs) == "0,1,2", "produced at offsets %v", offs)
	old := config()
	old.Version = oldVersion
	got, err := readPartition(old, t, 0, 3, 0, 10*time.Second)
	noRefusal(err, "Fetch v8")
	obs(s, "error", errName(err))
	obs(s, "records_read", len(got))
	var rs []string
	for _, m := range got {
		rs = append(rs, fmt.Sprintf("%d:%s", m.Offset, m.Key))
	}
	obs(s, "records", strings.Join(rs, ","))
	check(err == nil, "Fetch v8 of zstd data: %v (Kafka 4 serves it)", err)
	check(strings.Join(rs, ",") == "0:k0,1:k1,2:k2", "Fetch v8 of zstd data read %v, expected 0:k0,1:k1,2:k2", rs)
	for i, m := range got {
		check(string(m.Value) == string(payload("zstd", i)), "value mismatch at %d", m.Offset)
	}
}

func sCreateTopic(s string) {
	t := name("create")
	a := admin()
	defer a.Close()
	ret := "3600000"
	err := a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &ret}}, false)
	obs(s, "create_error", errName(err))
	must(err, "CreateTopics")
	check(waitTopic(t, true), "created topic not in metadata")
	md, err := a.DescribeTopics([]string{t})
	must(err, "DescribeTopics")
	check(len(md) == 1, "%d topics described", len(md))
	obs(s, "metadata_error", errName(md[0].Err))
	obs(s, "partitions", len(md[0].Partitions))
	check(len(md[0].Partitions) == 3, "expected 3 partitions, got %d", len(md[0].Partitions))
	err = a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	noRefusal(err, "second CreateTopics")
	obs(s, "duplicate_error", errName(err))
	k, _ := kerr(err)
	check(err != nil && k == sarama.ErrTopicAlreadyExists, "second create: %v, expected TOPIC_ALREADY_EXISTS", err)
}

func sGroupConsume(s string) {
	t, g := name("group"), name("group")
	setState("group", g)
	setState("topic", t)
	ensureTopic(t, 2, nil)
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 6; i++ {
		msgs = append(msgs, kv(i, int32(i%2), t))
	}
	_, err := produce(config(), msgs)
	must(err, "produce")
	got, claims := groupRead(g, t, 6, 6, 25*time.Second, 0)
	var rs []string
	for _, m := range got {
		rs = append(rs, fmt.Sprintf("%d:%d:%s", m.Partition, m.Offset, m.Key))
	}
	sort.Strings(rs)
	obs(s, "records", strings.Join(rs, ","))
	obs(s, "assignment", strings.Trim(strings.ReplaceAll(fmt.Sprint(claims), " ", ","), "[]"))
	check(len(got) == 6, "group consumer got %d of 6", len(got))
	check(strings.Join(rs, ",") == "0:0:k0,0:1:k2,0:2:k4,1:0:k1,1:1:k3,1:2:k5", "records %v", rs)
}

func sCommit(s string) {
	// A fresh group: Sarama's offset manager only moves forward, and group_consume's group already
	// has commits past 3 (Kafka keeps those too).
	g, t := name("commit"), getState("topic")
	check(t != "", "no topic from group_consume")
	cl := newClient(config())
	defer cl.Close()
	om, err := sarama.NewOffsetManagerFromClient(g, cl)
	must(err, "NewOffsetManager")
	for _, p := range []int32{0, 1} {
		pom, err := om.ManagePartition(t, p)
		must(err, "ManagePartition")
		pom.MarkOffset(3, fmt.Sprintf("meta-%d", p))
		pom.Close()
	}
	must(om.Close(), "offset manager close (commit)")
	a := admin()
	defer a.Close()
	r, err := a.ListConsumerGroupOffsets(g, map[string][]int32{t: {0, 1}})
	must(err, "OffsetFetch")
	obs(s, "fetch_error", errName(r.Err))
	var offs []string
	for _, p := range []int32{0, 1} {
		b := r.GetBlock(t, p)
		check(b != nil, "no offset block for partition %d", p)
		check(b.Err == sarama.ErrNoError, "partition %d: %s", p, errName(b.Err))
		offs = append(offs, fmt.Sprintf("%d:%d:%s", p, b.Offset, b.Metadata))
	}
	obs(s, "committed", strings.Join(offs, ","))
	check(strings.Join(offs, ",") == "0:3:meta-0,1:3:meta-1", "committed read back as %v", offs)
}

func sGroupRestart(s string) {
	t, g := name("restart"), name("restart")
	ensureTopic(t, 1, nil)
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kv(i, 0, t))
	}
	_, err := produce(config(), msgs)
	must(err, "produce")
	first, _ := groupRead(g, t, 4, 4, 20*time.Second, 0)
	var fo []int64
	for _, m := range first {
		fo = append(fo, m.Offset)
	}
	obs(s, "first_offsets", joinOffsets(fo))
	check(joinOffsets(fo) == "0,1,2,3", "first consumer read %v, expected 0..3", fo)
	// Ask for one more than the 6 left, so a re-delivery would show up.
	second, _ := groupRead(g, t, 6, 7, 20*time.Second, 2*time.Second)
	var so []int64
	for _, m := range second {
		so = append(so, m.Offset)
	}
	obs(s, "second_offsets", joinOffsets(so))
	check(joinOffsets(so) == seq(4, 10), "restarted consumer read %v, expected 4..9", so)
}

func sSeekTimestamp(s string) {
	t := name("ts")
	ensureTopic(t, 1, nil)
	base := (time.Now().Unix() - 60) * 1000
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 3; i++ {
		m := kv(i, 0, t)
		m.Timestamp = time.UnixMilli(base + int64(1000*i))
		msgs = append(msgs, m)
	}
	_, err := produce(config(), msgs)
	must(err, "produce")
	cl := newClient(config())
	defer cl.Close()
	labels := []string{"before_first", "mid", "exact", "after_last"}
	ts := map[string]int64{"before_first": base - 5000, "mid": base + 500, "exact": base + 2000, "after_last": base + 60000}
	want := map[string]int64{"before_first": 0, "mid": 1, "exact": 2, "after_last": -1}
	res := map[string]int64{}
	for _, l := range labels {
		off, err := cl.GetOffset(t, 0, ts[l])
		must(err, "ListOffsets by timestamp")
		res[l] = off
		obs(s, l, off)
	}
	check(fmt.Sprint(res) == fmt.Sprint(want), "ListOffsets by time gave %v, expected %v", res, want)
	end, err := cl.GetOffset(t, 0, sarama.OffsetNewest)
	must(err, "ListOffsets latest")
	obs(s, "end_offset", end)
	for _, l := range labels[:3] {
		got := mustRead(t, 0, 1, res[l])
		check(len(got) == 1, "nothing read at offset %d (%s)", res[l], l)
		m := got[0]
		obs(s, l+"_record", fmt.Sprintf("%d:%s", m.Offset, m.Key))
		check(m.Offset == res[l] && string(m.Key) == fmt.Sprintf("k%d", res[l]), "seek to %d (%s) read %d:%s", res[l], l, m.Offset, m.Key)
		check(m.Timestamp.UnixMilli() == base+1000*res[l], "record %d has timestamp %d, produced %d", m.Offset, m.Timestamp.UnixMilli(), base+1000*res[l])
	}
	// after_last: no offset (-1); seeking to the end offset reads nothing.
	got, err := readPartition(config(), t, 0, 1, end, 2*time.Second)
	must(err, "consume at end")
	obs(s, "after_last_records", len(got))
	check(end == 3 && len(got) == 0, "end offset %d, %d records read there", end, len(got))
}

func sListGroups(s string) {
	g := getState("group")
	check(g != "", "no group from group_consume")
	a := admin()
	defer a.Close()
	gs, err := a.ListConsumerGroups()
	must(err, "ListGroups")
	pt, ok := gs[g]
	obs(s, "found", ok)
	check(ok, "group not in ListGroups (%d groups)", len(gs))
	obs(s, "protocol_type", pt)
	check(pt == "consumer", "protocol type %q, expected consumer", pt)
}

func sDescribeGroups(s string) {
	g := getState("group")
	check(g != "", "no group from group_consume")
	a := admin()
	defer a.Close()
	ds, err := a.DescribeConsumerGroups([]string{g})
	must(err, "DescribeGroups")
	check(len(ds) == 1, "%d descriptions", len(ds))
	d := ds[0]
	obs(s, "error", errName(d.Err))
	obs(s, "state", d.State)
	obs(s, "protocol_type", d.ProtocolType)
	obs(s, "members", len(d.Members))
	check(d.Err == sarama.ErrNoError, "error %s", errName(d.Err))
	check(d.GroupId == g, "described group %q", d.GroupId)
	check(d.State == "Empty", "state %q, expected Empty", d.State)
	check(d.ProtocolType == "consumer", "protocol type %q, expected consumer", d.ProtocolType)
	check(len(d.Members) == 0, "%d members, expected 0", len(d.Members))
}

// Kafka's names of DescribeConfigs config sources (sarama.ConfigSource has its own spelling).
var sourceNames = map[sarama.ConfigSource]string{sarama.SourceUnknown: "UNKNOWN", sarama.SourceTopic: "DYNAMIC_TOPIC_CONFIG",
	sarama.SourceDynamicBroker: "DYNAMIC_BROKER_CONFIG", sarama.SourceDynamicDefaultBroker: "DYNAMIC_DEFAULT_BROKER_CONFIG",
	sarama.SourceStaticBroker: "STATIC_BROKER_CONFIG", sarama.SourceDefault: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG",
	7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}

func sDescribeConfigs(s string) {
	t := name("create")
	a := admin()
	defer a.Close()
	es, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: t})
	must(err, "DescribeConfigs")
	cfg := map[string]sarama.ConfigEntry{}
	for _, e := range es {
		cfg[e.Name] = e
	}
	obs(s, "count_gt_10", len(cfg) > 10)
	for _, k := range []string{"retention.ms", "cleanup.policy", "max.message.bytes", "compression.type"} {
		if e, ok := cfg[k]; ok {
			obs(s, k, e.Value)
			obs(s, k+".source", sourceNames[e.Source])
			obs(s, k+".default", e.Default)
		}
	}
	r, ok := cfg["retention.ms"]
	check(ok, "retention.ms missing (%d configs)", len(cfg))
	check(r.Value == "3600000", "retention.ms = %s", r.Value)
	check(r.Source == sarama.SourceTopic, "retention.ms source %s, expected DYNAMIC_TOPIC_CONFIG", sourceNames[r.Source])
	c, ok := cfg["cleanup.policy"]
	check(ok, "cleanup.policy missing (%d configs)", len(cfg))
	check(c.Value == "delete", "cleanup.policy = %s", c.Value)
	check(c.Source == sarama.SourceDefault, "cleanup.policy source %s, expected DEFAULT_CONFIG", sourceNames[c.Source])
}

func sDeleteTopic(s string) {
	t := name("create")
	a := admin()
	defer a.Close()
	err := a.DeleteTopic(t)
	obs(s, "delete_error", errName(err))
	must(err, "DeleteTopics")
	gone := waitTopic(t, false)
	obs(s, "gone", gone)
	check(gone, "topic still listed 10s after delete")
	err = a.DeleteTopic(t)
	noRefusal(err, "second DeleteTopics")
	obs(s, "second_delete_error", errName(err))
	k, _ := kerr(err)
	check(err != nil && k == sarama.ErrUnknownTopicOrPartition, "second delete: %v, expected UNKNOWN_TOPIC_OR_PARTITION", err)
}

func sIdempotent(s string) {
	t := name("idem")
	ensureTopic(t, 1, nil)
	conf := config()
	conf.Producer.Idempotent = true
	conf.Producer.RequiredAcks = sarama.WaitForAll
	conf.Net.MaxOpenRequests = 1
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 5; i++ {
		msgs = append(msgs, kv(i, 0, t))
	}
	offs, err := produce(conf, msgs)
	obs(s, "produce_error", errName(err))
	must(err, "idempotent produce")
	obs(s, "offsets", joinOffsets(offs))
	check(joinOffsets(offs) == seq(0, 5), "produced at offsets %v, expected 0..4", offs)
	got, err := readPartition(config(), t, 0, 6, 0, 5*time.Second)
	must(err, "consume")
	var ro, vs []string
	for _, m := range got {
		ro = append(ro, fmt.Sprint(m.Offset))
		vs = append(vs, string(m.Value))
	}
	obs(s, "read_offsets", strings.Join(ro, ","))
	obs(s, "values", strings.Join(vs, ","))
	check(strings.Join(ro, ",") == seq(0, 5), "read back offsets %v, expected 0..4 once each", ro)
	check(strings.Join(vs, ",") == "v0,v1,v2,v3,v4", "read back values %v", vs)
}

func sMissingTopic(s string) {
	if missing == "" {
		panic(skip("COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"))
	}
	conf := config()
	conf.Producer.Partitioner = sarama.NewHashPartitioner
	conf.Metadata.Retry.Max = 2
	p, err := sarama.NewSyncProducer([]string{missing}, conf)
	must(err, "NewSyncProducer")
	defer p.Close()
	t0 := time.Now()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: name("missing"), Value: sarama.StringEncoder("x")})
	noRefusal(err, "produce")
	obs(s, "error", errName(err))
	check(err != nil, "produce to a missing topic succeeded (is auto-create off?)")
	k, _ := kerr(err)
	check(k == sarama.ErrUnknownTopicOrPartition, "expected UNKNOWN_TOPIC_OR_PARTITION, got %v", err)
	check(time.Since(t0) < 20*time.Second, "the error took %v", time.Since(t0))
}

func sOversize(s string) {
	t := name("big")
	mx := "10000"
	ensureTopic(t, 1, map[string]*string{"max.message.bytes": &mx})
	big := make([]byte, 20000)
	rand.Read(big)
	_, err := produce(config(), []*sarama.ProducerMessage{{Topic: t, Partition: 0, Value: sarama.ByteEncoder(big)}})
	noRefusal(err, "produce")
	obs(s, "error", errName(err))
	check(err != nil, "20000-byte record accepted by a topic with max.message.bytes=10000")
	k, _ := kerr(err)
	check(k == sarama.ErrMessageSizeTooLarge, "expected MESSAGE_TOO_LARGE, got %v", err)
}

func saramaVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/IBM/sarama" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func main() {
	ver := flag.String("version", "default", "Sarama Config.Version: default (sarama.NewConfig), max (sarama.MaxVersion) or a Kafka version")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: sarama-compat [-version default|max] BOOTSTRAP")
		os.Exit(2)
	}
	bootstrap = flag.Arg(0)
	sarama.Logger = log.New(io.Discard, "", 0)
	if os.Getenv("COMPAT_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags)
		sarama.DebugLogger = sarama.Logger
	}
	switch *ver {
	case "max":
		version, client = sarama.MaxVersion, "sarama-max"
	case "default":
		version, client = sarama.NewConfig().Version, "sarama-default"
	default:
		// Any other Kafka version (e.g. 0.10.2.0): for probing what Kafka 4 refuses; not in the matrix.
		v, err := sarama.ParseKafkaVersion(*ver)
		if err != nil {
			fmt.Fprintln(os.Stderr, "-version must be default, max or a Kafka version:", err)
			os.Exit(2)
		}
		version, client = v, "sarama-"+v.String()
	}
	if rid == "" {
		b := make([]byte, 4)
		rand.Read(b)
		rid = hex.EncodeToString(b)
	}
	type sc struct {
		n string
		f func(string)
	}
	all := []sc{{"create_topic", sCreateTopic}}
	for _, c := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		all = append(all, sc{"produce_" + c, sProduce(c)})
	}
	all = append(all, []sc{{"group_consume", sGroupConsume}, {"commit", sCommit}, {"group_restart", sGroupRestart},
		{"seek_timestamp", sSeekTimestamp}, {"list_groups", sListGroups}, {"describe_groups", sDescribeGroups},
		{"describe_configs", sDescribeConfigs}, {"delete_topic", sDeleteTopic}, {"idempotent_producer", sIdempotent},
		{"missing_topic", sMissingTopic}, {"oversize_record", sOversize},
		{"zstd_old_produce", sZstdOldProduce}, {"zstd_old_fetch", sZstdOldFetch}}...)
	var sel []sc
	var names []string
	only := os.Getenv("COMPAT_SCENARIOS")
	for _, x := range all {
		if only == "" || strings.Contains(","+only+",", ","+x.n+",") {
			sel = append(sel, x)
			names = append(names, x.n)
		}
	}
	out(fmt.Sprintf("# sarama %s (github.com/IBM/sarama) Config.Version=%s (%s)", saramaVersion(), version, *ver))
	out("SCENARIOS " + strings.Join(names, " "))
	deadline, per := 240, 40
	if d := os.Getenv("COMPAT_DEADLINE"); d != "" {
		fmt.Sscan(d, &deadline)
	}
	if d := os.Getenv("COMPAT_SCENARIO_TIMEOUT"); d != "" {
		fmt.Sscan(d, &per)
	}
	time.AfterFunc(time.Duration(deadline)*time.Second, func() {
		for _, x := range sel {
			fail(x.n, "watchdog: program deadline reached")
		}
		finish()
	})
	// Preflight: one bounded metadata round trip, else FAIL everything at once.
	pre := make(chan error, 1)
	go func() {
		cl, err := sarama.NewClient([]string{bootstrap}, config())
		if err == nil {
			cl.Close()
		}
		pre <- err
	}()
	var perr error
	select {
	case perr = <-pre:
	case <-time.After(15 * time.Second):
		perr = fmt.Errorf("timeout")
	}
	if perr != nil {
		for _, x := range sel {
			fail(x.n, fmt.Sprintf("preflight against %s failed (broker down?): %v", bootstrap, perr))
		}
		finish()
	}
	for _, x := range sel {
		res := make(chan error, 1)
		go func(x sc) {
			defer func() {
				if r := recover(); r != nil {
					if e, ok := r.(error); ok {
						res <- e
					} else {
						res <- fmt.Errorf("%v", r)
					}
				}
			}()
			x.f(x.n)
			res <- nil
		}(x)
		select {
		case err := <-res:
			var sk skip
			if errors.As(err, &sk) {
				result(x.n, "SKIP "+x.n+": "+string(sk), 0)
			} else if what, ok := refusal(err); ok {
				obs(x.n, "refused", what)
				result(x.n, "SKIP "+x.n+": refused by the broker: "+clean(err)+fmt.Sprintf(" (Config.Version %s)", version), 0)
			} else if err != nil {
				fail(x.n, err)
			} else {
				result(x.n, "PASS "+x.n, 1)
			}
		case <-time.After(time.Duration(per) * time.Second):
			fail(x.n, fmt.Sprintf("timed out after %ds", per))
		}
	}
	finish()
}
