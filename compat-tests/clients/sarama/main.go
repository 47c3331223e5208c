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
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	compat "sluice.dev/compat/goharness"
)

var (
	bootstrap string
	client    string
	version   sarama.KafkaVersion
)

// oldVersion is the Config.Version of the zstd_old_* scenarios: Sarama sends Produce v6 and
// Fetch v8 there (produce_set.go, consumer.go), below zstd's Produce v7 / Fetch v10.
var oldVersion = sarama.V2_0_0_0

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
		return compat.ErrorName(int16(k))
	}
	return "not-a-kafka-error:" + compat.Clean(err)
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
	if compat.ConnClosed(err) {
		return "closed", true
	}
	return "", false
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
	compat.Must(err, "NewClient")
	return cl
}

func admin() sarama.ClusterAdmin {
	a, err := sarama.NewClusterAdmin([]string{bootstrap}, config())
	compat.Must(err, "NewClusterAdmin")
	return a
}

// partitionsOf asks Metadata directly (ClusterAdmin.ListTopics also sends DescribeConfigs);
// 0 when the topic is not in the metadata.
func partitionsOf(t string) int {
	cl := newClient(config())
	defer cl.Close()
	ts, err := cl.Topics()
	compat.Must(err, "Metadata")
	for _, x := range ts {
		if x == t {
			ps, err := cl.Partitions(t)
			compat.Must(err, "Metadata partitions")
			return len(ps)
		}
	}
	return 0
}

func waitTopic(t string, present bool) bool {
	return compat.Eventually(10*time.Second, func() bool { return (partitionsOf(t) > 0) == present })
}

func ensureTopic(t string, partitions int32, configs map[string]*string) {
	a := admin()
	defer a.Close()
	err := a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}, false)
	if k, ok := kerr(err); !ok || (k != sarama.ErrNoError && k != sarama.ErrTopicAlreadyExists) {
		compat.Must(err, "CreateTopics "+t)
	}
	compat.Check(waitTopic(t, true), "topic %s not in metadata", t)
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
	compat.Must(err, "consume")
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
	compat.Must(err, "NewConsumerGroup")
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
		t := compat.Name(s)
		ensureTopic(t, 1, nil)
		conf := config()
		conf.Producer.Compression = codecOf(codec)
		var msgs []*sarama.ProducerMessage
		for i := 0; i < 10; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: t, Partition: 0, Key: sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
				Value: sarama.ByteEncoder(compat.Payload(codec, i)), Headers: []sarama.RecordHeader{
					{Key: []byte("h-index"), Value: []byte(fmt.Sprint(i))}, {Key: []byte("h-codec"), Value: []byte(codec)},
					{Key: []byte("h-dup"), Value: []byte("a")}, {Key: []byte("h-dup"), Value: []byte("b")}}})
		}
		offs, err := produce(conf, msgs)
		compat.Obs(s, "produce_error", errName(err))
		compat.Must(err, "produce")
		compat.Obs(s, "offsets", compat.JoinInts(offs))
		compat.Check(compat.JoinInts(offs) == compat.Seq(0, 10), "produced at offsets %v, expected 0..9", offs)
		got := mustRead(t, 0, 10, 0)
		compat.Check(len(got) == 10, "read back %d of 10", len(got))
		var ro []int64
		for i, m := range got {
			compat.Check(m.Offset == int64(i), "record %d read at offset %d", i, m.Offset)
			compat.Check(string(m.Key) == fmt.Sprintf("key-%d", i), "key mismatch at %d: %q", m.Offset, m.Key)
			compat.Check(string(m.Value) == string(compat.Payload(codec, i)), "value mismatch at %d", m.Offset)
			want := fmt.Sprintf("h-index=%d,h-codec=%s,h-dup=a,h-dup=b", i, codec)
			compat.Check(headersOf(m) == want, "headers mismatch at %d: %v", m.Offset, headersOf(m))
			ro = append(ro, m.Offset)
		}
		compat.Obs(s, "read_offsets", compat.JoinInts(ro))
		compat.Obs(s, "records_ok", len(got))
	}
}

// sZstdOldProduce: a zstd record batch in Produce v6 (Sarama's version at Config.Version 2.0.0)
// must be refused with UNSUPPORTED_COMPRESSION_TYPE (zstd needs Produce v7+), and nothing written.
// Sarama's producer refuses zstd below Config.Version 2.1 by itself (config validation), so the
// request is built with Sarama's ProduceRequest/RecordBatch and sent with Broker.Produce.
func sZstdOldProduce(s string) {
	t := compat.Name(s)
	ensureTopic(t, 1, nil)
	conf := config()
	conf.Version = oldVersion
	cl := newClient(conf)
	defer cl.Close()
	b, err := cl.Leader(t, 0)
	compat.Must(err, "Leader")
	now := time.Now().Truncate(time.Millisecond)
	batch := &sarama.RecordBatch{Version: 2, Codec: sarama.CompressionZSTD, CompressionLevel: sarama.CompressionLevelDefault,
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, LastOffsetDelta: 2}
	for i := 0; i < 3; i++ {
		batch.Records = append(batch.Records, &sarama.Record{OffsetDelta: int64(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: compat.Payload("zstd", i)})
	}
	req := &sarama.ProduceRequest{Version: 6, RequiredAcks: sarama.WaitForAll, Timeout: 10000}
	req.AddBatch(t, 0, batch)
	resp, err := b.Produce(req)
	compat.Must(err, "Produce v6")
	compat.Obs(s, "produce_version", req.Version)
	blk := resp.GetBlock(t, 0)
	compat.Check(blk != nil, "no partition in the Produce response")
	compat.Obs(s, "error", errName(blk.Err))
	compat.Check(blk.Err == sarama.ErrUnsupportedCompressionType, "zstd in Produce v%d answered %s, expected UNSUPPORTED_COMPRESSION_TYPE", req.Version, errName(blk.Err))
	end, err := cl.GetOffset(t, 0, sarama.OffsetNewest)
	compat.Must(err, "ListOffsets latest")
	compat.Obs(s, "end_offset", end)
	compat.Check(end == 0, "end offset %d after a refused produce, expected 0", end)
}

// sZstdOldFetch: zstd batches produced at this variant's Config.Version (Produce v7+), then read
// by a consumer at Config.Version 2.0.0, which sends Fetch v8 (consumer.go). Before 4.0 Kafka
// refused that with UNSUPPORTED_COMPRESSION_TYPE (a check on the topic's compression.type=zstd and
// Fetch < v10); Kafka 4.x dropped it along with down-conversion (4.4's only
// UNSUPPORTED_COMPRESSION_TYPE for records is ProduceRequest's, Produce < v7), and with the default
// compression.type=producer it never applied to zstd batches. So Fetch v8 gets the zstd batches
// as they are: the scenario asserts the 3 records come back intact at offsets 0..2.
func sZstdOldFetch(s string) {
	t := compat.Name(s)
	ensureTopic(t, 1, nil)
	conf := config()
	conf.Producer.Compression = sarama.CompressionZSTD
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 3; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: t, Partition: 0, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.ByteEncoder(compat.Payload("zstd", i))})
	}
	offs, err := produce(conf, msgs)
	compat.Must(err, "zstd produce at Config.Version "+version.String())
	compat.Obs(s, "offsets", compat.JoinInts(offs))
	compat.Check(compat.JoinInts(offs) == "0,1,2", "produced at offsets %v", offs)
	old := config()
	old.Version = oldVersion
	got, err := readPartition(old, t, 0, 3, 0, 10*time.Second)
	compat.NoRefusal(err, "Fetch v8")
	compat.Obs(s, "error", errName(err))
	compat.Obs(s, "records_read", len(got))
	var rs []string
	for _, m := range got {
		rs = append(rs, fmt.Sprintf("%d:%s", m.Offset, m.Key))
	}
	compat.Obs(s, "records", strings.Join(rs, ","))
	compat.Check(err == nil, "Fetch v8 of zstd data: %v (Kafka 4 serves it)", err)
	compat.Check(strings.Join(rs, ",") == "0:k0,1:k1,2:k2", "Fetch v8 of zstd data read %v, expected 0:k0,1:k1,2:k2", rs)
	for i, m := range got {
		compat.Check(string(m.Value) == string(compat.Payload("zstd", i)), "value mismatch at %d", m.Offset)
	}
}

func sCreateTopic(s string) {
	t := compat.Name("create")
	a := admin()
	defer a.Close()
	ret := "3600000"
	err := a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &ret}}, false)
	compat.Obs(s, "create_error", errName(err))
	compat.Must(err, "CreateTopics")
	compat.Check(waitTopic(t, true), "created topic not in metadata")
	md, err := a.DescribeTopics([]string{t})
	compat.Must(err, "DescribeTopics")
	compat.Check(len(md) == 1, "%d topics described", len(md))
	compat.Obs(s, "metadata_error", errName(md[0].Err))
	compat.Obs(s, "partitions", len(md[0].Partitions))
	compat.Check(len(md[0].Partitions) == 3, "expected 3 partitions, got %d", len(md[0].Partitions))
	err = a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	compat.NoRefusal(err, "second CreateTopics")
	compat.Obs(s, "duplicate_error", errName(err))
	k, _ := kerr(err)
	compat.Check(err != nil && k == sarama.ErrTopicAlreadyExists, "second create: %v, expected TOPIC_ALREADY_EXISTS", err)
}

func sGroupConsume(s string) {
	t, g := compat.Name("group"), compat.Name("group")
	compat.SetState("group", g)
	compat.SetState("topic", t)
	ensureTopic(t, 2, nil)
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 6; i++ {
		msgs = append(msgs, kv(i, int32(i%2), t))
	}
	// Idempotent: a retry of a write that did land (a just-created topic's first produce on a
	// busy Kafka) must not store the record twice.
	conf := config()
	conf.Producer.Idempotent = true
	conf.Net.MaxOpenRequests = 1
	_, err := produce(conf, msgs)
	compat.Must(err, "produce")
	got, claims := groupRead(g, t, 6, 6, 25*time.Second, 0)
	var rs []string
	for _, m := range got {
		rs = append(rs, fmt.Sprintf("%d:%d:%s", m.Partition, m.Offset, m.Key))
	}
	sort.Strings(rs)
	compat.Obs(s, "records", strings.Join(rs, ","))
	compat.Obs(s, "assignment", strings.Trim(strings.ReplaceAll(fmt.Sprint(claims), " ", ","), "[]"))
	compat.Check(len(got) == 6, "group consumer got %d of 6", len(got))
	compat.Check(strings.Join(rs, ",") == "0:0:k0,0:1:k2,0:2:k4,1:0:k1,1:1:k3,1:2:k5", "records %v", rs)
}

func sCommit(s string) {
	// A fresh group: Sarama's offset manager only moves forward, and group_consume's group already
	// has commits past 3 (Kafka keeps those too).
	g, t := compat.Name("commit"), compat.GetState("topic")
	compat.Check(t != "", "no topic from group_consume")
	cl := newClient(config())
	defer cl.Close()
	om, err := sarama.NewOffsetManagerFromClient(g, cl)
	compat.Must(err, "NewOffsetManager")
	for _, p := range []int32{0, 1} {
		pom, err := om.ManagePartition(t, p)
		compat.Must(err, "ManagePartition")
		pom.MarkOffset(3, fmt.Sprintf("meta-%d", p))
		pom.Close()
	}
	compat.Must(om.Close(), "offset manager close (commit)")
	a := admin()
	defer a.Close()
	r, err := a.ListConsumerGroupOffsets(g, map[string][]int32{t: {0, 1}})
	compat.Must(err, "OffsetFetch")
	compat.Obs(s, "fetch_error", errName(r.Err))
	var offs []string
	for _, p := range []int32{0, 1} {
		b := r.GetBlock(t, p)
		compat.Check(b != nil, "no offset block for partition %d", p)
		compat.Check(b.Err == sarama.ErrNoError, "partition %d: %s", p, errName(b.Err))
		offs = append(offs, fmt.Sprintf("%d:%d:%s", p, b.Offset, b.Metadata))
	}
	compat.Obs(s, "committed", strings.Join(offs, ","))
	compat.Check(strings.Join(offs, ",") == "0:3:meta-0,1:3:meta-1", "committed read back as %v", offs)
}

func sGroupRestart(s string) {
	t, g := compat.Name("restart"), compat.Name("restart")
	ensureTopic(t, 1, nil)
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kv(i, 0, t))
	}
	_, err := produce(config(), msgs)
	compat.Must(err, "produce")
	first, _ := groupRead(g, t, 4, 4, 20*time.Second, 0)
	var fo []int64
	for _, m := range first {
		fo = append(fo, m.Offset)
	}
	compat.Obs(s, "first_offsets", compat.JoinInts(fo))
	compat.Check(compat.JoinInts(fo) == "0,1,2,3", "first consumer read %v, expected 0..3", fo)
	// Ask for one more than the 6 left, so a re-delivery would show up.
	second, _ := groupRead(g, t, 6, 7, 20*time.Second, 2*time.Second)
	var so []int64
	for _, m := range second {
		so = append(so, m.Offset)
	}
	compat.Obs(s, "second_offsets", compat.JoinInts(so))
	compat.Check(compat.JoinInts(so) == compat.Seq(4, 10), "restarted consumer read %v, expected 4..9", so)
}

func sSeekTimestamp(s string) {
	t := compat.Name("ts")
	ensureTopic(t, 1, nil)
	base := (time.Now().Unix() - 60) * 1000
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 3; i++ {
		m := kv(i, 0, t)
		m.Timestamp = time.UnixMilli(base + int64(1000*i))
		msgs = append(msgs, m)
	}
	_, err := produce(config(), msgs)
	compat.Must(err, "produce")
	cl := newClient(config())
	defer cl.Close()
	labels := []string{"before_first", "mid", "exact", "after_last"}
	ts := map[string]int64{"before_first": base - 5000, "mid": base + 500, "exact": base + 2000, "after_last": base + 60000}
	want := map[string]int64{"before_first": 0, "mid": 1, "exact": 2, "after_last": -1}
	res := map[string]int64{}
	for _, l := range labels {
		off, err := cl.GetOffset(t, 0, ts[l])
		compat.Must(err, "ListOffsets by timestamp")
		res[l] = off
		compat.Obs(s, l, off)
	}
	compat.Check(fmt.Sprint(res) == fmt.Sprint(want), "ListOffsets by time gave %v, expected %v", res, want)
	end, err := cl.GetOffset(t, 0, sarama.OffsetNewest)
	compat.Must(err, "ListOffsets latest")
	compat.Obs(s, "end_offset", end)
	for _, l := range labels[:3] {
		got := mustRead(t, 0, 1, res[l])
		compat.Check(len(got) == 1, "nothing read at offset %d (%s)", res[l], l)
		m := got[0]
		compat.Obs(s, l+"_record", fmt.Sprintf("%d:%s", m.Offset, m.Key))
		compat.Check(m.Offset == res[l] && string(m.Key) == fmt.Sprintf("k%d", res[l]), "seek to %d (%s) read %d:%s", res[l], l, m.Offset, m.Key)
		compat.Check(m.Timestamp.UnixMilli() == base+1000*res[l], "record %d has timestamp %d, produced %d", m.Offset, m.Timestamp.UnixMilli(), base+1000*res[l])
	}
	// after_last: no offset (-1); seeking to the end offset reads nothing.
	got, err := readPartition(config(), t, 0, 1, end, 2*time.Second)
	compat.Must(err, "consume at end")
	compat.Obs(s, "after_last_records", len(got))
	compat.Check(end == 3 && len(got) == 0, "end offset %d, %d records read there", end, len(got))
}

func sListGroups(s string) {
	g := compat.GetState("group")
	compat.Check(g != "", "no group from group_consume")
	a := admin()
	defer a.Close()
	gs, err := a.ListConsumerGroups()
	compat.Must(err, "ListGroups")
	pt, ok := gs[g]
	compat.Obs(s, "found", ok)
	compat.Check(ok, "group not in ListGroups (%d groups)", len(gs))
	compat.Obs(s, "protocol_type", pt)
	compat.Check(pt == "consumer", "protocol type %q, expected consumer", pt)
}

func sDescribeGroups(s string) {
	g := compat.GetState("group")
	compat.Check(g != "", "no group from group_consume")
	a := admin()
	defer a.Close()
	ds, err := a.DescribeConsumerGroups([]string{g})
	compat.Must(err, "DescribeGroups")
	compat.Check(len(ds) == 1, "%d descriptions", len(ds))
	d := ds[0]
	compat.Obs(s, "error", errName(d.Err))
	compat.Obs(s, "state", d.State)
	compat.Obs(s, "protocol_type", d.ProtocolType)
	compat.Obs(s, "members", len(d.Members))
	compat.Check(d.Err == sarama.ErrNoError, "error %s", errName(d.Err))
	compat.Check(d.GroupId == g, "described group %q", d.GroupId)
	compat.Check(d.State == "Empty", "state %q, expected Empty", d.State)
	compat.Check(d.ProtocolType == "consumer", "protocol type %q, expected consumer", d.ProtocolType)
	compat.Check(len(d.Members) == 0, "%d members, expected 0", len(d.Members))
}

func sDescribeConfigs(s string) {
	t := compat.Name("create")
	a := admin()
	defer a.Close()
	es, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: t})
	compat.Must(err, "DescribeConfigs")
	cfg := map[string]sarama.ConfigEntry{}
	for _, e := range es {
		cfg[e.Name] = e
	}
	compat.Obs(s, "count_gt_10", len(cfg) > 10)
	for _, k := range []string{"retention.ms", "cleanup.policy", "max.message.bytes", "compression.type"} {
		if e, ok := cfg[k]; ok {
			compat.Obs(s, k, e.Value)
			compat.Obs(s, k+".source", compat.ConfigSourceName(int8(e.Source)))
			compat.Obs(s, k+".default", e.Default)
		}
	}
	r, ok := cfg["retention.ms"]
	compat.Check(ok, "retention.ms missing (%d configs)", len(cfg))
	compat.Check(r.Value == "3600000", "retention.ms = %s", r.Value)
	compat.Check(r.Source == sarama.SourceTopic, "retention.ms source %s, expected DYNAMIC_TOPIC_CONFIG", compat.ConfigSourceName(int8(r.Source)))
	c, ok := cfg["cleanup.policy"]
	compat.Check(ok, "cleanup.policy missing (%d configs)", len(cfg))
	compat.Check(c.Value == "delete", "cleanup.policy = %s", c.Value)
	compat.Check(c.Source == sarama.SourceDefault, "cleanup.policy source %s, expected DEFAULT_CONFIG", compat.ConfigSourceName(int8(c.Source)))
}

func sDeleteTopic(s string) {
	t := compat.Name("create")
	a := admin()
	defer a.Close()
	err := a.DeleteTopic(t)
	compat.Obs(s, "delete_error", errName(err))
	compat.Must(err, "DeleteTopics")
	gone := waitTopic(t, false)
	compat.Obs(s, "gone", gone)
	compat.Check(gone, "topic still listed 10s after delete")
	err = a.DeleteTopic(t)
	compat.NoRefusal(err, "second DeleteTopics")
	compat.Obs(s, "second_delete_error", errName(err))
	k, _ := kerr(err)
	compat.Check(err != nil && k == sarama.ErrUnknownTopicOrPartition, "second delete: %v, expected UNKNOWN_TOPIC_OR_PARTITION", err)
}

func sIdempotent(s string) {
	t := compat.Name("idem")
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
	compat.Obs(s, "produce_error", errName(err))
	compat.Must(err, "idempotent produce")
	compat.Obs(s, "offsets", compat.JoinInts(offs))
	compat.Check(compat.JoinInts(offs) == compat.Seq(0, 5), "produced at offsets %v, expected 0..4", offs)
	got, err := readPartition(config(), t, 0, 6, 0, 5*time.Second)
	compat.Must(err, "consume")
	var ro, vs []string
	for _, m := range got {
		ro = append(ro, fmt.Sprint(m.Offset))
		vs = append(vs, string(m.Value))
	}
	compat.Obs(s, "read_offsets", strings.Join(ro, ","))
	compat.Obs(s, "values", strings.Join(vs, ","))
	compat.Check(strings.Join(ro, ",") == compat.Seq(0, 5), "read back offsets %v, expected 0..4 once each", ro)
	compat.Check(strings.Join(vs, ",") == "v0,v1,v2,v3,v4", "read back values %v", vs)
}

func sMissingTopic(s string) {
	if compat.Missing == "" {
		panic(compat.Skip("COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"))
	}
	conf := config()
	conf.Producer.Partitioner = sarama.NewHashPartitioner
	conf.Metadata.Retry.Max = 2
	p, err := sarama.NewSyncProducer([]string{compat.Missing}, conf)
	compat.Must(err, "NewSyncProducer")
	defer p.Close()
	t0 := time.Now()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: compat.Name("missing"), Value: sarama.StringEncoder("x")})
	compat.NoRefusal(err, "produce")
	compat.Obs(s, "error", errName(err))
	compat.Check(err != nil, "produce to a missing topic succeeded (is auto-create off?)")
	k, _ := kerr(err)
	compat.Check(k == sarama.ErrUnknownTopicOrPartition, "expected UNKNOWN_TOPIC_OR_PARTITION, got %v", err)
	compat.Check(time.Since(t0) < 20*time.Second, "the error took %v", time.Since(t0))
}

func sOversize(s string) {
	t := compat.Name("big")
	mx := "10000"
	ensureTopic(t, 1, map[string]*string{"max.message.bytes": &mx})
	big := make([]byte, 20000)
	rand.Read(big)
	_, err := produce(config(), []*sarama.ProducerMessage{{Topic: t, Partition: 0, Value: sarama.ByteEncoder(big)}})
	compat.NoRefusal(err, "produce")
	compat.Obs(s, "error", errName(err))
	compat.Check(err != nil, "20000-byte record accepted by a topic with max.message.bytes=10000")
	k, _ := kerr(err)
	compat.Check(k == sarama.ErrMessageSizeTooLarge, "expected MESSAGE_TOO_LARGE, got %v", err)
}

func main() {
	ver := flag.String("version", "default", "Sarama Config.Version: default (sarama.NewConfig), max (sarama.MaxVersion) or a Kafka version")
	flag.Parse()
	bootstrap = compat.Bootstrap(flag.Args(), "usage: sarama-compat [-version default|max] BOOTSTRAP")
	sarama.Logger = log.New(io.Discard, "", 0)
	if compat.Debug {
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
	all := []compat.Scenario{compat.Plain("create_topic", sCreateTopic)}
	for _, c := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		all = append(all, compat.Plain("produce_"+c, sProduce(c)))
	}
	all = append(all, compat.Plain("group_consume", sGroupConsume), compat.Plain("commit", sCommit),
		compat.Plain("group_restart", sGroupRestart), compat.Plain("seek_timestamp", sSeekTimestamp),
		compat.Plain("list_groups", sListGroups), compat.Plain("describe_groups", sDescribeGroups),
		compat.Plain("describe_configs", sDescribeConfigs), compat.Plain("delete_topic", sDeleteTopic),
		compat.Plain("idempotent_producer", sIdempotent), compat.Plain("missing_topic", sMissingTopic),
		compat.Plain("oversize_record", sOversize),
		compat.Plain("zstd_old_produce", sZstdOldProduce), compat.Plain("zstd_old_fetch", sZstdOldFetch))
	compat.Run(compat.Program{
		Client: client,
		Header: fmt.Sprintf("# sarama %s (github.com/IBM/sarama) Config.Version=%s (%s)",
			compat.ModuleVersion("github.com/IBM/sarama"), version, *ver),
		Scenarios: all,
		// One bounded metadata round trip.
		Preflight: func() error {
			cl, err := sarama.NewClient([]string{bootstrap}, config())
			if err == nil {
				cl.Close()
			}
			return err
		},
		Refusal:     refusal,
		RefusalNote: fmt.Sprintf(" (Config.Version %s)", version),
	})
}
