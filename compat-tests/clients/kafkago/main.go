// segmentio/kafka-go scenarios (github.com/segmentio/kafka-go from the Go module proxy, pinned in
// go.mod). kafka.Client for the admin and offset APIs, kafka.Writer for producing, kafka.Reader for
// reading partitions and for consumer groups. kafka-go negotiates API versions with ApiVersions.
// Nothing is skipped by a table: a request version the broker refuses (UNSUPPORTED_VERSION, or the
// connection close Kafka does for an unsupported version) is reported as
// `SKIP name: refused by the broker: ...` with `OBS name refused=...`; the only other SKIP is a
// scenario kafka-go has no API for at all (idempotent_producer).
// Usage: kafkago-compat BOOTSTRAP
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/describegroups"
)

const client = "kafka-go"

var (
	bootstrap string
	missing   = os.Getenv("COMPAT_MISSING_BOOTSTRAP")
	rid       = os.Getenv("COMPAT_RUN_ID")
	mu        sync.Mutex
	done      = map[string]bool{}
	passed    int
	failed    int
	state     = map[string]string{}
	stateMu   sync.Mutex
)

// Kafka's error names by code (Kafka's protocol error table).
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

// kerr extracts the Kafka error code of err (through kafka.WriteErrors and %w wrappers).
func kerr(err error) (kafka.Error, bool) {
	if err == nil {
		return 0, true
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil {
				return kerr(e)
			}
		}
	}
	var ke kafka.Error
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

// refusal tells whether err is the broker refusing a request version: UNSUPPORTED_VERSION, or the
// connection close Kafka does for a request version it does not serve.
func refusal(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	if k, ok := kerr(err); ok && k == kafka.UnsupportedVersion {
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

func ctx(d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	time.AfterFunc(d+time.Second, cancel)
	return c
}

var transport = &kafka.Transport{DialTimeout: 5 * time.Second, ClientID: "compat-kafka-go", MetadataTTL: 500 * time.Millisecond}

func cli(addr string) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(addr), Timeout: 15 * time.Second, Transport: transport}
}

// partitionsOf asks Metadata for t: its partition count, 0 when the topic is not there.
func partitionsOf(t string) int {
	md, err := cli(bootstrap).Metadata(ctx(10*time.Second), &kafka.MetadataRequest{Topics: []string{t}})
	must(err, "Metadata")
	for _, x := range md.Topics {
		if x.Name == t && x.Error == nil {
			return len(x.Partitions)
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

func createTopic(t string, partitions int, configs ...kafka.ConfigEntry) error {
	r, err := cli(bootstrap).CreateTopics(ctx(15*time.Second), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: t, NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}}})
	if err != nil {
		return err
	}
	return r.Errors[t]
}

func ensureTopic(t string, partitions int, configs ...kafka.ConfigEntry) {
	err := createTopic(t, partitions, configs...)
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		must(err, "CreateTopics "+t)
	}
	check(waitTopic(t, true), "topic %s not in metadata", t)
}

// keyBalancer sends a record whose key ends in digit n to partition n % len(partitions).
type keyBalancer struct{}

func (keyBalancer) Balance(m kafka.Message, partitions ...int) int {
	n, _ := strconv.Atoi(strings.TrimLeft(string(m.Key), "abcdefghijklmnopqrstuvwxyz-"))
	return partitions[n%len(partitions)]
}

// write produces msgs with a Writer (acks=all) and returns the offsets the broker assigned.
func write(addr, t string, codec kafka.Compression, msgs ...kafka.Message) ([]int64, error) {
	var mu sync.Mutex
	offs := map[string]int64{}
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: t, Balancer: keyBalancer{}, Compression: codec, RequiredAcks: kafka.RequireAll,
		BatchSize: len(msgs), BatchTimeout: 20 * time.Millisecond, MaxAttempts: 3, WriteTimeout: 15 * time.Second,
		ReadTimeout: 15 * time.Second, Transport: transport,
		Completion: func(ms []kafka.Message, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				for _, m := range ms {
					offs[string(m.Key)] = m.Offset
				}
			}
		}}
	err := w.WriteMessages(ctx(20*time.Second), msgs...)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	var res []int64
	for _, m := range msgs {
		if o, ok := offs[string(m.Key)]; ok {
			res = append(res, o)
		}
	}
	return res, err
}

// readPartition reads up to n records of t/p from offset with a group-less Reader, for at most wait.
func readPartition(t string, p int, offset int64, n int, wait time.Duration) ([]kafka.Message, error) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, Topic: t, Partition: p, MinBytes: 1, MaxBytes: 1 << 20,
		MaxWait: 300 * time.Millisecond, ReadBatchTimeout: 2 * time.Second, Dialer: &kafka.Dialer{Timeout: 5 * time.Second}})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		return nil, err
	}
	c := ctx(wait)
	var got []kafka.Message
	for len(got) < n {
		m, err := r.ReadMessage(c)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return got, nil
			}
			return got, err
		}
		got = append(got, m)
	}
	return got, nil
}

func mustRead(t string, p int, offset int64, n int) []kafka.Message {
	got, err := readPartition(t, p, offset, n, 15*time.Second)
	must(err, "fetch")
	return got
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

func kv(i int) kafka.Message {
	return kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))}
}

func headersOf(m kafka.Message) string {
	var hs []string
	for _, h := range m.Headers {
		hs = append(hs, h.Key+"="+string(h.Value))
	}
	return strings.Join(hs, ",")
}

func sProduce(codecName string, codec kafka.Compression) func(string) {
	return func(s string) {
		t := name(s)
		ensureTopic(t, 1)
		var msgs []kafka.Message
		for i := 0; i < 10; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("key-%d", i)), Value: payload(codecName, i), Headers: []kafka.Header{
				{Key: "h-index", Value: []byte(fmt.Sprint(i))}, {Key: "h-codec", Value: []byte(codecName)},
				{Key: "h-dup", Value: []byte("a")}, {Key: "h-dup", Value: []byte("b")}}})
		}
		offs, err := write(bootstrap, t, codec, msgs...)
		obs(s, "produce_error", errName(err))
		must(err, "produce")
		obs(s, "offsets", joinOffsets(offs))
		check(joinOffsets(offs) == seq(0, 10), "produced at offsets %v, expected 0..9", offs)
		got := mustRead(t, 0, 0, 10)
		check(len(got) == 10, "read back %d of 10", len(got))
		var ro []int64
		for i, m := range got {
			check(m.Offset == int64(i), "record %d read at offset %d", i, m.Offset)
			check(string(m.Key) == fmt.Sprintf("key-%d", i), "key mismatch at %d: %q", m.Offset, m.Key)
			check(string(m.Value) == string(payload(codecName, i)), "value mismatch at %d", m.Offset)
			want := fmt.Sprintf("h-index=%d,h-codec=%s,h-dup=a,h-dup=b", i, codecName)
			check(headersOf(m) == want, "headers mismatch at %d: %v", m.Offset, headersOf(m))
			ro = append(ro, m.Offset)
		}
		obs(s, "read_offsets", joinOffsets(ro))
		obs(s, "records_ok", len(got))
	}
}

func sCreateTopic(s string) {
	t := name("create")
	err := createTopic(t, 3, kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: "3600000"})
	obs(s, "create_error", errName(err))
	must(err, "CreateTopics")
	check(waitTopic(t, true), "created topic not in metadata")
	n := partitionsOf(t)
	obs(s, "partitions", n)
	check(n == 3, "expected 3 partitions, got %d", n)
	err = createTopic(t, 3)
	noRefusal(err, "second CreateTopics")
	obs(s, "duplicate_error", errName(err))
	check(errors.Is(err, kafka.TopicAlreadyExists), "second create: %v, expected TOPIC_ALREADY_EXISTS", err)
}

// groupRead joins group g with a Reader, fetches n records (or until timeout), then waits up to
// linger for one more (a re-delivery), commits what it read when commit is set, and closes the
// Reader (which leaves the group).
func groupRead(g, t string, n int, commit bool, timeout, linger time.Duration) []kafka.Message {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, GroupID: g, Topic: t, MinBytes: 1, MaxBytes: 1 << 20,
		MaxWait: 300 * time.Millisecond, ReadBatchTimeout: 2 * time.Second, SessionTimeout: 10 * time.Second,
		HeartbeatInterval: time.Second, RebalanceTimeout: 10 * time.Second, JoinGroupBackoff: 500 * time.Millisecond,
		StartOffset: kafka.FirstOffset, Dialer: &kafka.Dialer{Timeout: 5 * time.Second}})
	defer r.Close()
	c := ctx(timeout)
	var got []kafka.Message
	for len(got) < n {
		m, err := r.FetchMessage(c)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				panic(fmt.Errorf("group fetch: %w", err))
			}
			break
		}
		got = append(got, m)
	}
	if linger > 0 && len(got) == n {
		if m, err := r.FetchMessage(ctx(linger)); err == nil {
			got = append(got, m)
		}
	}
	if commit && len(got) > 0 {
		must(r.CommitMessages(ctx(10*time.Second), got...), "CommitMessages")
	}
	return got
}

func sGroupConsume(s string) {
	t, g := name("group"), name("group")
	setState("group", g)
	setState("topic", t)
	ensureTopic(t, 2)
	var msgs []kafka.Message
	for i := 0; i < 6; i++ {
		msgs = append(msgs, kv(i))
	}
	_, err := write(bootstrap, t, 0, msgs...)
	must(err, "produce")
	got := groupRead(g, t, 6, true, 25*time.Second, 0)
	var rs []string
	for _, m := range got {
		rs = append(rs, fmt.Sprintf("%d:%d:%s", m.Partition, m.Offset, m.Key))
	}
	sort.Strings(rs)
	obs(s, "records", strings.Join(rs, ","))
	check(len(got) == 6, "group consumer got %d of 6", len(got))
	check(strings.Join(rs, ",") == "0:0:k0,0:1:k2,0:2:k4,1:0:k1,1:1:k3,1:2:k5", "records %v", rs)
}

func sCommit(s string) {
	// A fresh group with no members: OffsetCommit with generation -1 (a commit from outside any
	// generation, which Kafka accepts for an empty group), then OffsetFetch.
	g, t := name("commit"), getState("topic")
	check(t != "", "no topic from group_consume")
	cl := cli(bootstrap)
	r, err := cl.OffsetCommit(ctx(15*time.Second), &kafka.OffsetCommitRequest{GroupID: g, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{t: {{Partition: 0, Offset: 3, Metadata: "meta-0"}, {Partition: 1, Offset: 3, Metadata: "meta-1"}}}})
	must(err, "OffsetCommit")
	var errs []string
	for _, p := range r.Topics[t] {
		errs = append(errs, fmt.Sprintf("%d:%s", p.Partition, errName(p.Error)))
	}
	sort.Strings(errs)
	obs(s, "commit_errors", strings.Join(errs, ","))
	check(strings.Join(errs, ",") == "0:NONE,1:NONE", "OffsetCommit answered %v", errs)
	f, err := cl.OffsetFetch(ctx(15*time.Second), &kafka.OffsetFetchRequest{GroupID: g, Topics: map[string][]int{t: {0, 1}}})
	must(err, "OffsetFetch")
	obs(s, "fetch_error", errName(f.Error))
	check(f.Error == nil, "OffsetFetch: %v", f.Error)
	var offs []string
	for _, p := range f.Topics[t] {
		check(p.Error == nil, "partition %d: %v", p.Partition, p.Error)
		offs = append(offs, fmt.Sprintf("%d:%d:%s", p.Partition, p.CommittedOffset, p.Metadata))
	}
	sort.Strings(offs)
	obs(s, "committed", strings.Join(offs, ","))
	check(strings.Join(offs, ",") == "0:3:meta-0,1:3:meta-1", "committed read back as %v", offs)
}

func sGroupRestart(s string) {
	t, g := name("restart"), name("restart")
	ensureTopic(t, 1)
	var msgs []kafka.Message
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kv(i))
	}
	_, err := write(bootstrap, t, 0, msgs...)
	must(err, "produce")
	first := groupRead(g, t, 4, true, 20*time.Second, 0)
	var fo []int64
	for _, m := range first {
		fo = append(fo, m.Offset)
	}
	obs(s, "first_offsets", joinOffsets(fo))
	check(joinOffsets(fo) == "0,1,2,3", "first consumer read %v, expected 0..3", fo)
	// Then one more for 2s, so a re-delivery would show up.
	second := groupRead(g, t, 6, false, 20*time.Second, 2*time.Second)
	var so []int64
	for _, m := range second {
		so = append(so, m.Offset)
	}
	obs(s, "second_offsets", joinOffsets(so))
	check(joinOffsets(so) == seq(4, 10), "restarted consumer read %v, expected 4..9", so)
}

// offsetForTime is ListOffsets of t/0 for timestamp ts: the offset, -1 when there is none.
func offsetForTime(t string, ts int64) int64 {
	r, err := cli(bootstrap).ListOffsets(ctx(15*time.Second), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		t: {{Partition: 0, Timestamp: ts}}}})
	must(err, "ListOffsets")
	ps := r.Topics[t]
	check(len(ps) == 1, "ListOffsets answered %d partitions", len(ps))
	must(ps[0].Error, "ListOffsets partition 0")
	for o := range ps[0].Offsets {
		return o
	}
	return -1 // kafka-go files the (-1, -1) answer under LastOffset
}

func sSeekTimestamp(s string) {
	t := name("ts")
	ensureTopic(t, 1)
	base := (time.Now().Unix() - 60) * 1000
	var msgs []kafka.Message
	for i := 0; i < 3; i++ {
		m := kv(i)
		m.Time = time.UnixMilli(base + int64(1000*i))
		msgs = append(msgs, m)
	}
	_, err := write(bootstrap, t, 0, msgs...)
	must(err, "produce")
	labels := []string{"before_first", "mid", "exact", "after_last"}
	ts := map[string]int64{"before_first": base - 5000, "mid": base + 500, "exact": base + 2000, "after_last": base + 60000}
	want := map[string]int64{"before_first": 0, "mid": 1, "exact": 2, "after_last": -1}
	res := map[string]int64{}
	for _, l := range labels {
		res[l] = offsetForTime(t, ts[l])
		obs(s, l, res[l])
	}
	check(fmt.Sprint(res) == fmt.Sprint(want), "ListOffsets by time gave %v, expected %v", res, want)
	for _, l := range labels[:3] {
		got := mustRead(t, 0, res[l], 1)
		check(len(got) == 1, "nothing read at offset %d (%s)", res[l], l)
		m := got[0]
		obs(s, l+"_record", fmt.Sprintf("%d:%s", m.Offset, m.Key))
		check(m.Offset == res[l] && string(m.Key) == fmt.Sprintf("k%d", res[l]), "seek to %d (%s) read %d:%s", res[l], l, m.Offset, m.Key)
		check(m.Time.UnixMilli() == base+1000*res[l], "record %d has timestamp %d, produced %d", m.Offset, m.Time.UnixMilli(), base+1000*res[l])
	}
	// after_last: no offset (-1); the end offset is 3 and reading there returns nothing.
	got, err := readPartition(t, 0, 3, 1, 2*time.Second)
	must(err, "fetch at end")
	obs(s, "after_last_records", len(got))
	check(len(got) == 0, "%d records read at the end offset", len(got))
}

func sListGroups(s string) {
	g := getState("group")
	check(g != "", "no group from group_consume")
	r, err := cli(bootstrap).ListGroups(ctx(15*time.Second), &kafka.ListGroupsRequest{})
	must(err, "ListGroups")
	obs(s, "error", errName(r.Error))
	pt, found := "", false
	for _, x := range r.Groups {
		if x.GroupID == g {
			pt, found = x.ProtocolType, true
		}
	}
	obs(s, "found", found)
	check(found, "group not in ListGroups (%d groups)", len(r.Groups))
	obs(s, "protocol_type", pt)
	check(pt == "consumer", "protocol type %q, expected consumer", pt)
}

func sDescribeGroups(s string) {
	g := getState("group")
	check(g != "", "no group from group_consume")
	cl := cli(bootstrap)
	r, err := cl.DescribeGroups(ctx(15*time.Second), &kafka.DescribeGroupsRequest{GroupIDs: []string{g}})
	must(err, "DescribeGroups")
	check(len(r.Groups) == 1, "%d descriptions", len(r.Groups))
	d := r.Groups[0]
	obs(s, "error", errName(d.Error))
	obs(s, "state", d.GroupState)
	obs(s, "members", len(d.Members))
	// kafka.DescribeGroupsResponseGroup has no protocol type: the same request through the
	// library's transport and protocol package gives the full response.
	raw, err := transport.RoundTrip(ctx(15*time.Second), kafka.TCP(bootstrap), &describegroups.Request{Groups: []string{g}})
	must(err, "DescribeGroups (protocol)")
	rg := raw.(*describegroups.Response).Groups
	check(len(rg) == 1, "%d descriptions (protocol)", len(rg))
	obs(s, "protocol_type", rg[0].ProtocolType)
	check(d.Error == nil, "error %v", d.Error)
	check(d.GroupID == g, "described group %q", d.GroupID)
	check(d.GroupState == "Empty", "state %q, expected Empty", d.GroupState)
	check(rg[0].ProtocolType == "consumer", "protocol type %q, expected consumer", rg[0].ProtocolType)
	check(len(d.Members) == 0, "%d members, expected 0", len(d.Members))
}

var sourceNames = map[int8]string{0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
	4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG", 7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}

func sDescribeConfigs(s string) {
	t := name("create")
	r, err := cli(bootstrap).DescribeConfigs(ctx(15*time.Second), &kafka.DescribeConfigsRequest{
		Resources: []kafka.DescribeConfigRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: t}}})
	must(err, "DescribeConfigs")
	check(len(r.Resources) == 1, "%d resources", len(r.Resources))
	obs(s, "error", errName(r.Resources[0].Error))
	must(r.Resources[0].Error, "DescribeConfigs resource")
	cfg := map[string]kafka.DescribeConfigResponseConfigEntry{}
	for _, e := range r.Resources[0].ConfigEntries {
		cfg[e.ConfigName] = e
	}
	obs(s, "count_gt_10", len(cfg) > 10)
	for _, k := range []string{"retention.ms", "cleanup.policy", "max.message.bytes", "compression.type"} {
		if e, ok := cfg[k]; ok {
			obs(s, k, e.ConfigValue)
			obs(s, k+".source", sourceNames[e.ConfigSource])
		}
	}
	rt, ok := cfg["retention.ms"]
	check(ok, "retention.ms missing (%d configs)", len(cfg))
	check(rt.ConfigValue == "3600000", "retention.ms = %s", rt.ConfigValue)
	check(rt.ConfigSource == 1, "retention.ms source %s, expected DYNAMIC_TOPIC_CONFIG", sourceNames[rt.ConfigSource])
	c, ok := cfg["cleanup.policy"]
	check(ok, "cleanup.policy missing (%d configs)", len(cfg))
	check(c.ConfigValue == "delete", "cleanup.policy = %s", c.ConfigValue)
	check(c.ConfigSource == 5, "cleanup.policy source %s, expected DEFAULT_CONFIG", sourceNames[c.ConfigSource])
}

func deleteTopic(t string) error {
	r, err := cli(bootstrap).DeleteTopics(ctx(15*time.Second), &kafka.DeleteTopicsRequest{Topics: []string{t}})
	if err != nil {
		return err
	}
	return r.Errors[t]
}

func sDeleteTopic(s string) {
	t := name("create")
	err := deleteTopic(t)
	obs(s, "delete_error", errName(err))
	must(err, "DeleteTopics")
	gone := waitTopic(t, false)
	obs(s, "gone", gone)
	check(gone, "topic still in metadata 10s after delete")
	err = deleteTopic(t)
	noRefusal(err, "second DeleteTopics")
	obs(s, "second_delete_error", errName(err))
	check(errors.Is(err, kafka.UnknownTopicOrPartition), "second delete: %v, expected UNKNOWN_TOPIC_OR_PARTITION", err)
}

func sIdempotent(s string) {
	panic(skip("kafka-go has no idempotent producer at all: kafka.Writer has no enable.idempotence, and its record-batch encoder always writes producerId -1 / baseSequence -1 (protocol/record_v2.go)"))
}

func sMissingTopic(s string) {
	if missing == "" {
		panic(skip("COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"))
	}
	t0 := time.Now()
	_, err := write(missing, name("missing"), 0, kafka.Message{Key: []byte("k0"), Value: []byte("x")})
	noRefusal(err, "produce")
	obs(s, "error", errName(err))
	check(err != nil, "produce to a missing topic succeeded (is auto-create off?)")
	check(errors.Is(err, kafka.UnknownTopicOrPartition), "expected UNKNOWN_TOPIC_OR_PARTITION, got %v", err)
	check(time.Since(t0) < 20*time.Second, "the error took %v", time.Since(t0))
}

func sOversize(s string) {
	t := name("big")
	ensureTopic(t, 1, kafka.ConfigEntry{ConfigName: "max.message.bytes", ConfigValue: "10000"})
	big := make([]byte, 20000)
	rand.Read(big)
	_, err := write(bootstrap, t, 0, kafka.Message{Key: []byte("k0"), Value: big})
	noRefusal(err, "produce")
	obs(s, "error", errName(err))
	check(err != nil, "20000-byte record accepted by a topic with max.message.bytes=10000")
	k, _ := kerr(err)
	check(k == kafka.MessageSizeTooLarge, "expected MESSAGE_TOO_LARGE, got %v", err)
}

func libVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/segmentio/kafka-go" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kafkago-compat BOOTSTRAP")
		os.Exit(2)
	}
	bootstrap = os.Args[1]
	if rid == "" {
		b := make([]byte, 4)
		rand.Read(b)
		rid = hex.EncodeToString(b)
	}
	type sc struct {
		n string
		f func(string)
	}
	all := []sc{{"create_topic", sCreateTopic}, {"produce_none", sProduce("none", 0)},
		{"produce_gzip", sProduce("gzip", kafka.Gzip)}, {"produce_snappy", sProduce("snappy", kafka.Snappy)},
		{"produce_lz4", sProduce("lz4", kafka.Lz4)}, {"produce_zstd", sProduce("zstd", kafka.Zstd)},
		{"group_consume", sGroupConsume}, {"commit", sCommit}, {"group_restart", sGroupRestart},
		{"seek_timestamp", sSeekTimestamp}, {"list_groups", sListGroups}, {"describe_groups", sDescribeGroups},
		{"describe_configs", sDescribeConfigs}, {"delete_topic", sDeleteTopic}, {"idempotent_producer", sIdempotent},
		{"missing_topic", sMissingTopic}, {"oversize_record", sOversize}}
	var sel []sc
	var names []string
	only := os.Getenv("COMPAT_SCENARIOS")
	for _, x := range all {
		if only == "" || strings.Contains(","+only+",", ","+x.n+",") {
			sel = append(sel, x)
			names = append(names, x.n)
		}
	}
	out(fmt.Sprintf("# segmentio/kafka-go %s", libVersion()))
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
	pre := make(chan error, 1)
	go func() {
		_, err := cli(bootstrap).Metadata(ctx(10*time.Second), &kafka.MetadataRequest{})
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
				result(x.n, "SKIP "+x.n+": refused by the broker: "+clean(err), 0)
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
