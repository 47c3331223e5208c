// Sarama scenarios (Debian's golang-github-shopify-sarama-dev, built with GOPATH=/usr/share/gocode).
// Usage: sarama-compat [-version default|max] BOOTSTRAP
// Sarama does not negotiate API versions: it sends the versions implied by Config.Version, so the
// runner runs this program twice (Sarama's default Config.Version and sarama.MaxVersion).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
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
)

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

func fail(name string, reason interface{}) {
	r := strings.Join(strings.Fields(fmt.Sprint(reason)), " ")
	if len(r) > 400 {
		r = r[:400]
	}
	result(name, "FAIL "+name+": "+r, -1)
}

func obs(s, k string, v interface{}) {
	val := strings.Replace(strings.Replace(fmt.Sprint(v), rid, "<id>", -1), " ", "_", -1)
	out(fmt.Sprintf("OBS %s %s=%s", s, k, val))
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
		panic(fmt.Errorf("%s: %v", what, err))
	}
}

func name(s string) string {
	return strings.Replace(fmt.Sprintf("compat-%s-%s-%s", client, s, rid), "_", "-", -1)
}

func payload(codec string, i int) []byte {
	return []byte(fmt.Sprintf("value-%d-%s-", i, codec) + strings.Repeat("abcdefgh", 40))
}

// removedInKafka4 names the protocol versions a scenario needs at this Config.Version that
// Kafka 4.0 removed (KIP-896), and so sluice (which serves Kafka 4's versions) refuses too.
// Empty when the scenario can run.
func removedInKafka4(scenario string) string {
	if !version.IsAtLeast(sarama.V0_11_0_0) {
		switch scenario {
		case "missing_topic":
			return ""
		default:
			return fmt.Sprintf("Config.Version %s produces and fetches with Produce v0-2 / Fetch v0-3 (message sets), removed in Kafka 4.0 (KIP-896)", version)
		}
	}
	switch scenario {
	case "produce_zstd":
		return "Sarama 1.22 sends zstd in Produce v3; zstd needs Produce v7+ (Kafka answers UNSUPPORTED_COMPRESSION_TYPE too)"
	case "describe_configs":
		return "Sarama 1.22 sends DescribeConfigs v0, removed in Kafka 4.0 (KIP-896)"
	}
	return ""
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
	// acks=all: the broker answers after the fsync, when the records are visible to ListOffsets.
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
	// Sarama 1.22 commits with OffsetCommit v1 (removed in Kafka 4.0, not served by sluice) unless a
	// retention is set, which makes it send v2.
	c.Consumer.Offsets.Retention = 24 * time.Hour
	return c
}

func admin() sarama.ClusterAdmin {
	a, err := sarama.NewClusterAdmin([]string{bootstrap}, config())
	must(err, "NewClusterAdmin")
	return a
}

// topicExists asks Metadata directly (ClusterAdmin.ListTopics also sends DescribeConfigs).
func topicExists(t string) bool {
	cl, err := sarama.NewClient([]string{bootstrap}, config())
	must(err, "NewClient")
	defer cl.Close()
	ts, err := cl.Topics()
	must(err, "Topics")
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

func waitTopic(t string, present bool) bool {
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		if topicExists(t) == present {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func ensureTopic(t string, partitions int32, configs map[string]*string) {
	if !version.IsAtLeast(sarama.V0_10_1_0) {
		// No CreateTopics at this Config.Version: let Metadata auto-create it (broker default partitions).
		check(configs == nil, "topic configs need CreateTopics (Config.Version >= 0.10.1)")
		cl, err := sarama.NewClient([]string{bootstrap}, config())
		must(err, "NewClient")
		defer cl.Close()
		_, err = cl.Partitions(t)
		must(err, "auto-create "+t+" via Metadata")
		return
	}
	a := admin()
	defer a.Close()
	err := a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}, false)
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		must(err, "CreateTopic "+t)
	}
	check(waitTopic(t, true), "topic %s not in metadata", t)
}

func produce(conf *sarama.Config, msgs []*sarama.ProducerMessage) ([]int64, error) {
	p, err := sarama.NewSyncProducer([]string{bootstrap}, conf)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var offs []int64
	for _, m := range msgs {
		_, off, err := p.SendMessage(m)
		if err != nil {
			return offs, err
		}
		offs = append(offs, off)
	}
	return offs, nil
}

func readPartition(t string, p int32, n int, offset int64) []*sarama.ConsumerMessage {
	c, err := sarama.NewConsumer([]string{bootstrap}, config())
	must(err, "NewConsumer")
	defer c.Close()
	pc, err := c.ConsumePartition(t, p, offset)
	must(err, "ConsumePartition")
	defer pc.Close()
	var got []*sarama.ConsumerMessage
	timeout := time.After(15 * time.Second)
	for len(got) < n {
		select {
		case m := <-pc.Messages():
			got = append(got, m)
		case e := <-pc.Errors():
			panic(fmt.Errorf("consume: %v", e))
		case <-timeout:
			return got
		}
	}
	return got
}

func kv(i int, p int32, t string) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: t, Partition: p, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))}
}

// groupHandler collects messages of a consumer group session and marks what it reads (up to limit).
type groupHandler struct {
	mu    sync.Mutex
	got   []*sarama.ConsumerMessage
	limit int
	full  chan struct{}
	once  sync.Once
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		if len(h.got) < h.limit {
			h.got = append(h.got, m)
			sess.MarkMessage(m, "")
		}
		if len(h.got) >= h.limit {
			h.once.Do(func() { close(h.full) })
		}
		h.mu.Unlock()
	}
	return nil
}

// groupRead joins group g, reads up to limit records (or until timeout) and closes the group
// (Close commits marked offsets and leaves the group).
func groupRead(g, t string, limit int, timeout time.Duration) []*sarama.ConsumerMessage {
	cg, err := sarama.NewConsumerGroup([]string{bootstrap}, g, config())
	must(err, "NewConsumerGroup")
	h := &groupHandler{limit: limit, full: make(chan struct{})}
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
	case <-h.full:
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
	if cerr != nil && len(h.got) < limit {
		panic(fmt.Errorf("consumer group: %v", cerr))
	}
	return h.got
}

func codecOf(c string) sarama.CompressionCodec {
	return map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}[c]
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
		must(err, "produce")
		obs(s, "offsets", strings.Trim(fmt.Sprint(offs), "[]"))
		got := readPartition(t, 0, 10, 0)
		check(len(got) == 10, "read back %d of 10", len(got))
		var ro []string
		for i, m := range got {
			check(string(m.Key) == fmt.Sprintf("key-%d", i), "key mismatch at %d: %q", m.Offset, m.Key)
			check(string(m.Value) == string(payload(codec, i)), "value mismatch at %d", m.Offset)
			var hs []string
			for _, h := range m.Headers {
				hs = append(hs, string(h.Key)+"="+string(h.Value))
			}
			want := fmt.Sprintf("h-index=%d,h-codec=%s,h-dup=a,h-dup=b", i, codec)
			check(strings.Join(hs, ",") == want, "headers mismatch at %d: %v", m.Offset, hs)
			ro = append(ro, fmt.Sprint(m.Offset))
		}
		obs(s, "read_offsets", strings.Join(ro, ","))
	}
}

func sCreateTopic(s string) {
	t := name("create")
	a := admin()
	defer a.Close()
	ret := "3600000"
	err := a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &ret}}, false)
	must(err, "CreateTopic")
	check(waitTopic(t, true), "created topic not in metadata")
	md, err := a.DescribeTopics([]string{t})
	must(err, "DescribeTopics")
	obs(s, "partitions", len(md[0].Partitions))
	check(len(md[0].Partitions) == 3, "expected 3 partitions, got %d", len(md[0].Partitions))
	err = a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	obs(s, "duplicate_error", err)
	check(err != nil && strings.Contains(err.Error(), "already exists"), "second create: %v", err)
}

func sGroupConsume(s string) {
	t, g := name("group"), name("group-g")
	state["group"], state["topic"] = g, t
	ensureTopic(t, 2, nil)
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 6; i++ {
		msgs = append(msgs, kv(i, int32(i%2), t))
	}
	_, err := produce(config(), msgs)
	must(err, "produce")
	got := groupRead(g, t, 6, 25*time.Second)
	var rs []string
	for _, m := range got {
		rs = append(rs, fmt.Sprintf("%d:%d:%s", m.Partition, m.Offset, m.Key))
	}
	sort.Strings(rs)
	obs(s, "records", strings.Join(rs, ","))
	check(len(got) == 6, "group consumer got %d of 6", len(got))
}

func sCommit(s string) {
	// A fresh group: MarkOffset only moves forward, and group_consume's group already has
	// commits at or past 3 (Kafka would keep those too).
	g, t := name("commit-g"), state["topic"]
	check(t != "", "no topic from group_consume")
	cl, err := sarama.NewClient([]string{bootstrap}, config())
	must(err, "NewClient")
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
	must(err, "ListConsumerGroupOffsets")
	var offs []string
	for _, p := range []int32{0, 1} {
		b := r.GetBlock(t, p)
		check(b != nil, "no offset block for partition %d", p)
		offs = append(offs, fmt.Sprintf("%d:%d:%s", p, b.Offset, b.Metadata))
	}
	obs(s, "committed", strings.Join(offs, ","))
	check(strings.Join(offs, ",") == "0:3:meta-0,1:3:meta-1", "committed read back as %v", offs)
}

func sGroupRestart(s string) {
	t, g := name("restart"), name("restart-g")
	ensureTopic(t, 1, nil)
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kv(i, 0, t))
	}
	_, err := produce(config(), msgs)
	must(err, "produce")
	first := groupRead(g, t, 4, 20*time.Second)
	check(len(first) == 4, "first consumer got %d", len(first))
	second := groupRead(g, t, 7, 8*time.Second)
	var offs []string
	for _, m := range second {
		offs = append(offs, fmt.Sprint(m.Offset))
	}
	obs(s, "second_offsets", strings.Join(offs, ","))
	check(strings.Join(offs, ",") == "4,5,6,7,8,9", "restarted consumer read %v, expected 4..9", offs)
}

func sSeekTimestamp(s string) {
	t := name("ts")
	ensureTopic(t, 1, nil)
	base := (time.Now().Unix() - 60) * 1000
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 3; i++ {
		m := kv(i, 0, t)
		m.Timestamp = time.Unix(0, (base+int64(1000*i))*int64(time.Millisecond))
		msgs = append(msgs, m)
	}
	_, err := produce(config(), msgs)
	must(err, "produce")
	cl, err := sarama.NewClient([]string{bootstrap}, config())
	must(err, "NewClient")
	defer cl.Close()
	res := map[string]int64{}
	for _, q := range []struct {
		l  string
		ts int64
	}{{"before_first", base - 5000}, {"mid", base + 500}, {"exact", base + 2000}, {"after_last", base + 60000}} {
		off, err := cl.GetOffset(t, 0, q.ts)
		must(err, "GetOffset")
		res[q.l] = off
		obs(s, q.l, off)
	}
	want := map[string]int64{"before_first": 0, "mid": 1, "exact": 2, "after_last": -1}
	check(fmt.Sprint(res) == fmt.Sprint(want), "GetOffset by time gave %v, expected %v", res, want)
	got := readPartition(t, 0, 1, res["mid"])
	check(len(got) == 1 && string(got[0].Key) == "k1", "seek to offset for timestamp did not read k1")
	check(got[0].Timestamp.UnixNano()/1e6 == base+1000, "record timestamp %v", got[0].Timestamp)
}

func sListGroups(s string) {
	g := state["group"]
	check(g != "", "no group from group_consume")
	a := admin()
	defer a.Close()
	gs, err := a.ListConsumerGroups()
	must(err, "ListConsumerGroups")
	pt, ok := gs[g]
	check(ok, "group not in ListGroups (%d groups)", len(gs))
	obs(s, "protocol_type", pt)
}

func sDescribeGroups(s string) {
	g := state["group"]
	check(g != "", "no group from group_consume")
	a := admin()
	defer a.Close()
	ds, err := a.DescribeConsumerGroups([]string{g})
	must(err, "DescribeConsumerGroups")
	check(len(ds) == 1, "%d descriptions", len(ds))
	d := ds[0]
	obs(s, "error", d.Err)
	obs(s, "state", d.State)
	obs(s, "protocol_type", d.ProtocolType)
	obs(s, "members", len(d.Members))
	check(d.Err == sarama.ErrNoError, "error %v", d.Err)
	check(d.State == "Empty", "state %q, expected Empty", d.State)
}

func sDescribeConfigs(s string) {
	t := name("create")
	a := admin()
	defer a.Close()
	es, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: t})
	must(err, "DescribeConfig")
	cfg := map[string]sarama.ConfigEntry{}
	for _, e := range es {
		cfg[e.Name] = e
	}
	obs(s, "count_gt_10", len(cfg) > 10)
	r, ok := cfg["retention.ms"]
	check(ok, "retention.ms missing (%d configs)", len(cfg))
	obs(s, "retention.ms", r.Value)
	obs(s, "retention.ms.default", r.Default)
	for _, k := range []string{"cleanup.policy", "max.message.bytes"} {
		if e, ok := cfg[k]; ok {
			obs(s, k, e.Value)
		}
	}
	check(r.Value == "3600000", "retention.ms = %s", r.Value)
}

func sDeleteTopic(s string) {
	t := name("create")
	a := admin()
	defer a.Close()
	must(a.DeleteTopic(t), "DeleteTopic")
	gone := waitTopic(t, false)
	obs(s, "gone", gone)
	check(gone, "topic still listed 10s after delete")
	err := a.DeleteTopic(t)
	obs(s, "second_delete_error", err)
	check(err != nil && strings.Contains(err.Error(), sarama.ErrUnknownTopicOrPartition.Error()), "second delete: %v", err)
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
	must(err, "idempotent produce")
	obs(s, "offsets", strings.Trim(fmt.Sprint(offs), "[]"))
	check(fmt.Sprint(offs) == "[0 1 2 3 4]", "offsets %v", offs)
}

func sMissingTopic(s string) {
	if missing == "" {
		panic(skip("COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"))
	}
	conf := config()
	conf.Producer.Partitioner = sarama.NewHashPartitioner
	p, err := sarama.NewSyncProducer([]string{missing}, conf)
	must(err, "NewSyncProducer")
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: name("missing"), Value: sarama.StringEncoder("x")})
	obs(s, "error", err)
	check(err != nil, "produce to a missing topic succeeded (is auto-create off?)")
	check(errors.Is(err, sarama.ErrUnknownTopicOrPartition) || strings.Contains(err.Error(), "does not host"), "unexpected error %v", err)
}

func sOversize(s string) {
	t := name("big")
	mx := "10000"
	ensureTopic(t, 1, map[string]*string{"max.message.bytes": &mx})
	big := make([]byte, 20000)
	rand.Read(big)
	_, err := produce(config(), []*sarama.ProducerMessage{{Topic: t, Partition: 0, Value: sarama.ByteEncoder(big)}})
	obs(s, "error", err)
	check(err != nil, "20000-byte record accepted by a topic with max.message.bytes=10000")
	check(strings.Contains(err.Error(), sarama.ErrMessageSizeTooLarge.Error()), "expected MESSAGE_TOO_LARGE, got %v", err)
}

func main() {
	ver := flag.String("version", "default", "Sarama Config.Version: default (sarama.NewConfig) or max (sarama.MaxVersion)")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: sarama-compat [-version default|max] BOOTSTRAP")
		os.Exit(2)
	}
	bootstrap = flag.Arg(0)
	sarama.Logger = log.New(ioutil.Discard, "", 0)
	if os.Getenv("COMPAT_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags)
	}
	if *ver == "max" {
		version, client = sarama.MaxVersion, "sarama-max"
	} else {
		version, client = sarama.NewConfig().Version, "sarama-default"
	}
	if rid == "" {
		b := make([]byte, 4)
		rand.Read(b)
		rid = hex.EncodeToString(b)
	}
	codecs := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	type sc struct {
		n string
		f func(string)
	}
	all := []sc{{"create_topic", sCreateTopic}}
	for _, c := range codecs {
		all = append(all, sc{"produce_" + c, sProduce(c)})
	}
	all = append(all, []sc{{"group_consume", sGroupConsume}, {"commit", sCommit}, {"group_restart", sGroupRestart},
		{"seek_timestamp", sSeekTimestamp}, {"list_groups", sListGroups}, {"describe_groups", sDescribeGroups},
		{"describe_configs", sDescribeConfigs}, {"delete_topic", sDeleteTopic}, {"idempotent_producer", sIdempotent},
		{"missing_topic", sMissingTopic}, {"oversize_record", sOversize}}...)
	var sel []sc
	only := os.Getenv("COMPAT_SCENARIOS")
	for _, x := range all {
		if only == "" || strings.Contains(","+only+",", ","+x.n+",") {
			sel = append(sel, x)
		}
	}
	var names []string
	for _, x := range sel {
		names = append(names, x.n)
	}
	out(fmt.Sprintf("# sarama 1.22.1 (Debian) Config.Version=%s", version))
	out("SCENARIOS " + strings.Join(names, " "))
	deadline := 240 * time.Second
	if d := os.Getenv("COMPAT_DEADLINE"); d != "" {
		var n int
		fmt.Sscan(d, &n)
		deadline = time.Duration(n) * time.Second
	}
	time.AfterFunc(deadline, func() {
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
		if why := removedInKafka4(x.n); why != "" {
			result(x.n, "SKIP "+x.n+": "+why, 0)
			continue
		}
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
			if sk, ok := err.(skip); ok {
				result(x.n, "SKIP "+x.n+": "+string(sk), 0)
			} else if err != nil {
				fail(x.n, err)
			} else {
				result(x.n, "PASS "+x.n, 1)
			}
		case <-time.After(40 * time.Second):
			fail(x.n, "timed out after 40s")
		}
	}
	finish()
}
