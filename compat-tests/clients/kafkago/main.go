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
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/describegroups"
	compat "sluice.dev/compat/goharness"
)

const client = "kafka-go"

var bootstrap string

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
		return compat.ErrorName(int16(k))
	}
	return "not-a-kafka-error:" + compat.Clean(err)
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
	if compat.ConnClosed(err) {
		return "closed", true
	}
	return "", false
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
	compat.Must(err, "Metadata")
	for _, x := range md.Topics {
		if x.Name == t && x.Error == nil {
			return len(x.Partitions)
		}
	}
	return 0
}

func waitTopic(t string, present bool) bool {
	return compat.Eventually(10*time.Second, func() bool { return (partitionsOf(t) > 0) == present })
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
		compat.Must(err, "CreateTopics "+t)
	}
	compat.Check(waitTopic(t, true), "topic %s not in metadata", t)
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
	compat.Must(err, "fetch")
	return got
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
		t := compat.Name(s)
		ensureTopic(t, 1)
		var msgs []kafka.Message
		for i := 0; i < 10; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("key-%d", i)), Value: compat.Payload(codecName, i), Headers: []kafka.Header{
				{Key: "h-index", Value: []byte(fmt.Sprint(i))}, {Key: "h-codec", Value: []byte(codecName)},
				{Key: "h-dup", Value: []byte("a")}, {Key: "h-dup", Value: []byte("b")}}})
		}
		offs, err := write(bootstrap, t, codec, msgs...)
		compat.Obs(s, "produce_error", errName(err))
		compat.Must(err, "produce")
		compat.Obs(s, "offsets", compat.JoinInts(offs))
		compat.Check(compat.JoinInts(offs) == compat.Seq(0, 10), "produced at offsets %v, expected 0..9", offs)
		got := mustRead(t, 0, 0, 10)
		compat.Check(len(got) == 10, "read back %d of 10", len(got))
		var ro []int64
		for i, m := range got {
			compat.Check(m.Offset == int64(i), "record %d read at offset %d", i, m.Offset)
			compat.Check(string(m.Key) == fmt.Sprintf("key-%d", i), "key mismatch at %d: %q", m.Offset, m.Key)
			compat.Check(string(m.Value) == string(compat.Payload(codecName, i)), "value mismatch at %d", m.Offset)
			want := fmt.Sprintf("h-index=%d,h-codec=%s,h-dup=a,h-dup=b", i, codecName)
			compat.Check(headersOf(m) == want, "headers mismatch at %d: %v", m.Offset, headersOf(m))
			ro = append(ro, m.Offset)
		}
		compat.Obs(s, "read_offsets", compat.JoinInts(ro))
		compat.Obs(s, "records_ok", len(got))
	}
}

func sCreateTopic(s string) {
	t := compat.Name("create")
	err := createTopic(t, 3, kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: "3600000"})
	compat.Obs(s, "create_error", errName(err))
	compat.Must(err, "CreateTopics")
	compat.Check(waitTopic(t, true), "created topic not in metadata")
	n := partitionsOf(t)
	compat.Obs(s, "partitions", n)
	compat.Check(n == 3, "expected 3 partitions, got %d", n)
	err = createTopic(t, 3)
	compat.NoRefusal(err, "second CreateTopics")
	compat.Obs(s, "duplicate_error", errName(err))
	compat.Check(errors.Is(err, kafka.TopicAlreadyExists), "second create: %v, expected TOPIC_ALREADY_EXISTS", err)
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
		compat.Must(r.CommitMessages(ctx(10*time.Second), got...), "CommitMessages")
	}
	return got
}

func sGroupConsume(s string) {
	t, g := compat.Name("group"), compat.Name("group")
	compat.SetState("group", g)
	compat.SetState("topic", t)
	ensureTopic(t, 2)
	var msgs []kafka.Message
	for i := 0; i < 6; i++ {
		msgs = append(msgs, kv(i))
	}
	_, err := write(bootstrap, t, 0, msgs...)
	compat.Must(err, "produce")
	got := groupRead(g, t, 6, true, 25*time.Second, 0)
	var rs []string
	for _, m := range got {
		rs = append(rs, fmt.Sprintf("%d:%d:%s", m.Partition, m.Offset, m.Key))
	}
	sort.Strings(rs)
	compat.Obs(s, "records", strings.Join(rs, ","))
	compat.Check(len(got) == 6, "group consumer got %d of 6", len(got))
	compat.Check(strings.Join(rs, ",") == "0:0:k0,0:1:k2,0:2:k4,1:0:k1,1:1:k3,1:2:k5", "records %v", rs)
}

func sCommit(s string) {
	// A fresh group with no members: OffsetCommit with generation -1 (a commit from outside any
	// generation, which Kafka accepts for an empty group), then OffsetFetch.
	g, t := compat.Name("commit"), compat.GetState("topic")
	compat.Check(t != "", "no topic from group_consume")
	cl := cli(bootstrap)
	r, err := cl.OffsetCommit(ctx(15*time.Second), &kafka.OffsetCommitRequest{GroupID: g, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{t: {{Partition: 0, Offset: 3, Metadata: "meta-0"}, {Partition: 1, Offset: 3, Metadata: "meta-1"}}}})
	compat.Must(err, "OffsetCommit")
	var errs []string
	for _, p := range r.Topics[t] {
		errs = append(errs, fmt.Sprintf("%d:%s", p.Partition, errName(p.Error)))
	}
	sort.Strings(errs)
	compat.Obs(s, "commit_errors", strings.Join(errs, ","))
	compat.Check(strings.Join(errs, ",") == "0:NONE,1:NONE", "OffsetCommit answered %v", errs)
	f, err := cl.OffsetFetch(ctx(15*time.Second), &kafka.OffsetFetchRequest{GroupID: g, Topics: map[string][]int{t: {0, 1}}})
	compat.Must(err, "OffsetFetch")
	compat.Obs(s, "fetch_error", errName(f.Error))
	compat.Check(f.Error == nil, "OffsetFetch: %v", f.Error)
	var offs []string
	for _, p := range f.Topics[t] {
		compat.Check(p.Error == nil, "partition %d: %v", p.Partition, p.Error)
		offs = append(offs, fmt.Sprintf("%d:%d:%s", p.Partition, p.CommittedOffset, p.Metadata))
	}
	sort.Strings(offs)
	compat.Obs(s, "committed", strings.Join(offs, ","))
	compat.Check(strings.Join(offs, ",") == "0:3:meta-0,1:3:meta-1", "committed read back as %v", offs)
}

func sGroupRestart(s string) {
	t, g := compat.Name("restart"), compat.Name("restart")
	ensureTopic(t, 1)
	var msgs []kafka.Message
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kv(i))
	}
	_, err := write(bootstrap, t, 0, msgs...)
	compat.Must(err, "produce")
	first := groupRead(g, t, 4, true, 20*time.Second, 0)
	var fo []int64
	for _, m := range first {
		fo = append(fo, m.Offset)
	}
	compat.Obs(s, "first_offsets", compat.JoinInts(fo))
	compat.Check(compat.JoinInts(fo) == "0,1,2,3", "first consumer read %v, expected 0..3", fo)
	// Then one more for 2s, so a re-delivery would show up.
	second := groupRead(g, t, 6, false, 20*time.Second, 2*time.Second)
	var so []int64
	for _, m := range second {
		so = append(so, m.Offset)
	}
	compat.Obs(s, "second_offsets", compat.JoinInts(so))
	compat.Check(compat.JoinInts(so) == compat.Seq(4, 10), "restarted consumer read %v, expected 4..9", so)
}

// offsetForTime is ListOffsets of t/0 for timestamp ts: the offset, -1 when there is none.
func offsetForTime(t string, ts int64) int64 {
	r, err := cli(bootstrap).ListOffsets(ctx(15*time.Second), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		t: {{Partition: 0, Timestamp: ts}}}})
	compat.Must(err, "ListOffsets")
	ps := r.Topics[t]
	compat.Check(len(ps) == 1, "ListOffsets answered %d partitions", len(ps))
	compat.Must(ps[0].Error, "ListOffsets partition 0")
	for o := range ps[0].Offsets {
		return o
	}
	return -1 // kafka-go files the (-1, -1) answer under LastOffset
}

func sSeekTimestamp(s string) {
	t := compat.Name("ts")
	ensureTopic(t, 1)
	base := (time.Now().Unix() - 60) * 1000
	var msgs []kafka.Message
	for i := 0; i < 3; i++ {
		m := kv(i)
		m.Time = time.UnixMilli(base + int64(1000*i))
		msgs = append(msgs, m)
	}
	_, err := write(bootstrap, t, 0, msgs...)
	compat.Must(err, "produce")
	labels := []string{"before_first", "mid", "exact", "after_last"}
	ts := map[string]int64{"before_first": base - 5000, "mid": base + 500, "exact": base + 2000, "after_last": base + 60000}
	want := map[string]int64{"before_first": 0, "mid": 1, "exact": 2, "after_last": -1}
	res := map[string]int64{}
	for _, l := range labels {
		res[l] = offsetForTime(t, ts[l])
		compat.Obs(s, l, res[l])
	}
	compat.Check(fmt.Sprint(res) == fmt.Sprint(want), "ListOffsets by time gave %v, expected %v", res, want)
	for _, l := range labels[:3] {
		got := mustRead(t, 0, res[l], 1)
		compat.Check(len(got) == 1, "nothing read at offset %d (%s)", res[l], l)
		m := got[0]
		compat.Obs(s, l+"_record", fmt.Sprintf("%d:%s", m.Offset, m.Key))
		compat.Check(m.Offset == res[l] && string(m.Key) == fmt.Sprintf("k%d", res[l]), "seek to %d (%s) read %d:%s", res[l], l, m.Offset, m.Key)
		compat.Check(m.Time.UnixMilli() == base+1000*res[l], "record %d has timestamp %d, produced %d", m.Offset, m.Time.UnixMilli(), base+1000*res[l])
	}
	// after_last: no offset (-1); the end offset is 3 and reading there returns nothing.
	got, err := readPartition(t, 0, 3, 1, 2*time.Second)
	compat.Must(err, "fetch at end")
	compat.Obs(s, "after_last_records", len(got))
	compat.Check(len(got) == 0, "%d records read at the end offset", len(got))
}

func sListGroups(s string) {
	g := compat.GetState("group")
	compat.Check(g != "", "no group from group_consume")
	r, err := cli(bootstrap).ListGroups(ctx(15*time.Second), &kafka.ListGroupsRequest{})
	compat.Must(err, "ListGroups")
	compat.Obs(s, "error", errName(r.Error))
	pt, found := "", false
	for _, x := range r.Groups {
		if x.GroupID == g {
			pt, found = x.ProtocolType, true
		}
	}
	compat.Obs(s, "found", found)
	compat.Check(found, "group not in ListGroups (%d groups)", len(r.Groups))
	compat.Obs(s, "protocol_type", pt)
	compat.Check(pt == "consumer", "protocol type %q, expected consumer", pt)
}

func sDescribeGroups(s string) {
	g := compat.GetState("group")
	compat.Check(g != "", "no group from group_consume")
	cl := cli(bootstrap)
	r, err := cl.DescribeGroups(ctx(15*time.Second), &kafka.DescribeGroupsRequest{GroupIDs: []string{g}})
	compat.Must(err, "DescribeGroups")
	compat.Check(len(r.Groups) == 1, "%d descriptions", len(r.Groups))
	d := r.Groups[0]
	compat.Obs(s, "error", errName(d.Error))
	compat.Obs(s, "state", d.GroupState)
	compat.Obs(s, "members", len(d.Members))
	// kafka.DescribeGroupsResponseGroup has no protocol type: the same request through the
	// library's transport and protocol package gives the full response.
	raw, err := transport.RoundTrip(ctx(15*time.Second), kafka.TCP(bootstrap), &describegroups.Request{Groups: []string{g}})
	compat.Must(err, "DescribeGroups (protocol)")
	rg := raw.(*describegroups.Response).Groups
	compat.Check(len(rg) == 1, "%d descriptions (protocol)", len(rg))
	compat.Obs(s, "protocol_type", rg[0].ProtocolType)
	compat.Check(d.Error == nil, "error %v", d.Error)
	compat.Check(d.GroupID == g, "described group %q", d.GroupID)
	compat.Check(d.GroupState == "Empty", "state %q, expected Empty", d.GroupState)
	compat.Check(rg[0].ProtocolType == "consumer", "protocol type %q, expected consumer", rg[0].ProtocolType)
	compat.Check(len(d.Members) == 0, "%d members, expected 0", len(d.Members))
}

func sDescribeConfigs(s string) {
	t := compat.Name("create")
	r, err := cli(bootstrap).DescribeConfigs(ctx(15*time.Second), &kafka.DescribeConfigsRequest{
		Resources: []kafka.DescribeConfigRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: t}}})
	compat.Must(err, "DescribeConfigs")
	compat.Check(len(r.Resources) == 1, "%d resources", len(r.Resources))
	compat.Obs(s, "error", errName(r.Resources[0].Error))
	compat.Must(r.Resources[0].Error, "DescribeConfigs resource")
	cfg := map[string]kafka.DescribeConfigResponseConfigEntry{}
	for _, e := range r.Resources[0].ConfigEntries {
		cfg[e.ConfigName] = e
	}
	compat.Obs(s, "count_gt_10", len(cfg) > 10)
	for _, k := range []string{"retention.ms", "cleanup.policy", "max.message.bytes", "compression.type"} {
		if e, ok := cfg[k]; ok {
			compat.Obs(s, k, e.ConfigValue)
			compat.Obs(s, k+".source", compat.ConfigSourceName(e.ConfigSource))
		}
	}
	rt, ok := cfg["retention.ms"]
	compat.Check(ok, "retention.ms missing (%d configs)", len(cfg))
	compat.Check(rt.ConfigValue == "3600000", "retention.ms = %s", rt.ConfigValue)
	compat.Check(rt.ConfigSource == 1, "retention.ms source %s, expected DYNAMIC_TOPIC_CONFIG", compat.ConfigSourceName(rt.ConfigSource))
	c, ok := cfg["cleanup.policy"]
	compat.Check(ok, "cleanup.policy missing (%d configs)", len(cfg))
	compat.Check(c.ConfigValue == "delete", "cleanup.policy = %s", c.ConfigValue)
	compat.Check(c.ConfigSource == 5, "cleanup.policy source %s, expected DEFAULT_CONFIG", compat.ConfigSourceName(c.ConfigSource))
}

func deleteTopic(t string) error {
	r, err := cli(bootstrap).DeleteTopics(ctx(15*time.Second), &kafka.DeleteTopicsRequest{Topics: []string{t}})
	if err != nil {
		return err
	}
	return r.Errors[t]
}

func sDeleteTopic(s string) {
	t := compat.Name("create")
	err := deleteTopic(t)
	compat.Obs(s, "delete_error", errName(err))
	compat.Must(err, "DeleteTopics")
	gone := waitTopic(t, false)
	compat.Obs(s, "gone", gone)
	compat.Check(gone, "topic still in metadata 10s after delete")
	err = deleteTopic(t)
	compat.NoRefusal(err, "second DeleteTopics")
	compat.Obs(s, "second_delete_error", errName(err))
	compat.Check(errors.Is(err, kafka.UnknownTopicOrPartition), "second delete: %v, expected UNKNOWN_TOPIC_OR_PARTITION", err)
}

func sIdempotent(s string) {
	panic(compat.Skip("kafka-go has no idempotent producer at all: kafka.Writer has no enable.idempotence, and its record-batch encoder always writes producerId -1 / baseSequence -1 (protocol/record_v2.go)"))
}

func sMissingTopic(s string) {
	if compat.Missing == "" {
		panic(compat.Skip("COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"))
	}
	t0 := time.Now()
	_, err := write(compat.Missing, compat.Name("missing"), 0, kafka.Message{Key: []byte("k0"), Value: []byte("x")})
	compat.NoRefusal(err, "produce")
	compat.Obs(s, "error", errName(err))
	compat.Check(err != nil, "produce to a missing topic succeeded (is auto-create off?)")
	compat.Check(errors.Is(err, kafka.UnknownTopicOrPartition), "expected UNKNOWN_TOPIC_OR_PARTITION, got %v", err)
	compat.Check(time.Since(t0) < 20*time.Second, "the error took %v", time.Since(t0))
}

func sOversize(s string) {
	t := compat.Name("big")
	ensureTopic(t, 1, kafka.ConfigEntry{ConfigName: "max.message.bytes", ConfigValue: "10000"})
	big := make([]byte, 20000)
	rand.Read(big)
	_, err := write(bootstrap, t, 0, kafka.Message{Key: []byte("k0"), Value: big})
	compat.NoRefusal(err, "produce")
	compat.Obs(s, "error", errName(err))
	compat.Check(err != nil, "20000-byte record accepted by a topic with max.message.bytes=10000")
	k, _ := kerr(err)
	compat.Check(k == kafka.MessageSizeTooLarge, "expected MESSAGE_TOO_LARGE, got %v", err)
}

func main() {
	bootstrap = compat.Bootstrap(os.Args[1:], "usage: kafkago-compat BOOTSTRAP")
	compat.Run(compat.Program{
		Client: client,
		Header: "# segmentio/kafka-go " + compat.ModuleVersion("github.com/segmentio/kafka-go"),
		Scenarios: []compat.Scenario{compat.Plain("create_topic", sCreateTopic), compat.Plain("produce_none", sProduce("none", 0)),
			compat.Plain("produce_gzip", sProduce("gzip", kafka.Gzip)), compat.Plain("produce_snappy", sProduce("snappy", kafka.Snappy)),
			compat.Plain("produce_lz4", sProduce("lz4", kafka.Lz4)), compat.Plain("produce_zstd", sProduce("zstd", kafka.Zstd)),
			compat.Plain("group_consume", sGroupConsume), compat.Plain("commit", sCommit),
			compat.Plain("group_restart", sGroupRestart), compat.Plain("seek_timestamp", sSeekTimestamp),
			compat.Plain("list_groups", sListGroups), compat.Plain("describe_groups", sDescribeGroups),
			compat.Plain("describe_configs", sDescribeConfigs), compat.Plain("delete_topic", sDeleteTopic),
			compat.Plain("idempotent_producer", sIdempotent), compat.Plain("missing_topic", sMissingTopic),
			compat.Plain("oversize_record", sOversize)},
		// One bounded metadata round trip.
		Preflight: func() error {
			_, err := cli(bootstrap).Metadata(ctx(10*time.Second), &kafka.MetadataRequest{})
			return err
		},
		Refusal: refusal,
	})
}
