// franz-go scenarios: kgo (github.com/twmb/franz-go v1.22.3) for produce, consume and groups,
// kadm (github.com/twmb/franz-go/pkg/kadm v1.20.0) for admin requests.
// Usage: franz-compat BOOTSTRAP  (see compat-tests/README.md for the program contract)
// franz-go negotiates API versions (ApiVersions), so it runs once, at the newest versions both sides know.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const client = "franz-go"

var (
	bootstrap string
	missing   = os.Getenv("COMPAT_MISSING_BOOTSTRAP")
	rid       = os.Getenv("COMPAT_RUN_ID")
	debug     = os.Getenv("COMPAT_DEBUG") != ""
	mu        sync.Mutex
	done      = map[string]bool{}
	passed    int
	failed    int

	stateMu sync.Mutex
	state   = map[string]string{}
	groupCl *kgo.Client // the group_consume consumer, kept in its group until commit is done
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
	if rid != "" {
		r = strings.ReplaceAll(r, rid, "<id>")
	}
	if len(r) > 400 {
		r = r[:400]
	}
	result(name, "FAIL "+name+": "+r, -1)
}

func obs(s, k string, v interface{}) {
	val := fmt.Sprint(v)
	if rid != "" {
		val = strings.ReplaceAll(val, rid, "<id>")
	}
	val = strings.ReplaceAll(val, " ", "_")
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

// errName: the Kafka error name for broker errors (kerr), else the error text; NONE for nil.
func errName(err error) string {
	if err == nil {
		return "NONE"
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

func name(s string) string {
	return strings.ReplaceAll(fmt.Sprintf("compat-%s-%s-%s", client, s, rid), "_", "-")
}

func payload(codec string, i int) []byte {
	return []byte(fmt.Sprintf("value-%d-%s-", i, codec) + strings.Repeat("abcdefgh", 40))
}

// ---------------------------------------------------------------- clients

func baseOpts(seed string) []kgo.Opt {
	o := []kgo.Opt{
		kgo.SeedBrokers(seed),
		kgo.ClientID("compat-franz-go"),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(15 * time.Second),
		kgo.MetadataMinAge(200 * time.Millisecond),
		kgo.MetadataMaxAge(5 * time.Second),
	}
	if debug {
		o = append(o, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, func() string { return "[kgo] " })))
	}
	return o
}

func newClient(opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append(baseOpts(bootstrap), opts...)...)
	must(err, "kgo.NewClient")
	return cl
}

// producer: acks=all (the broker answers once the records are durable and visible to
// ListOffsets), idempotent (franz-go's default), records go to the partition they name.
// No RecordDeliveryTimeout: kgo measures it from Record.Timestamp, which seek_timestamp sets
// in the past; the scenario's context bounds ProduceSync instead.
func producer(opts ...kgo.Opt) *kgo.Client {
	return newClient(append([]kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner())},
		opts...)...)
}

func withAdmin(f func(a *kadm.Client)) {
	cl := newClient()
	defer cl.Close()
	a := kadm.NewClient(cl)
	a.SetTimeoutMillis(15000)
	f(a)
}

func topicExists(ctx context.Context, a *kadm.Client, t string) bool {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tds, err := a.ListTopics(c)
	must(err, "ListTopics")
	td, ok := tds[t]
	return ok && td.Err == nil
}

func waitTopic(ctx context.Context, a *kadm.Client, t string, present bool) bool {
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		if topicExists(ctx, a, t) == present {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func ensureTopic(ctx context.Context, t string, partitions int32, configs map[string]*string) {
	withAdmin(func(a *kadm.Client) {
		_, err := a.CreateTopic(ctx, partitions, 1, configs, t)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			must(err, "CreateTopic "+t)
		}
		check(waitTopic(ctx, a, t, true), "topic %s not in metadata", t)
	})
}

func produce(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) []int64 {
	res := cl.ProduceSync(ctx, recs...)
	var offs []int64
	for _, r := range res {
		must(r.Err, "produce")
		offs = append(offs, r.Record.Offset)
	}
	return offs
}

// readPartition reads up to n records of one partition from offset, group-less; it returns what
// it has after wait (fetch errors other than the deadline FAIL the scenario).
func readPartition(ctx context.Context, t string, p int32, n int, offset int64, wait time.Duration) []*kgo.Record {
	cl := newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: {p: kgo.NewOffset().At(offset)}}),
		kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	c, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n && c.Err() == nil {
		fs := cl.PollRecords(c, n-len(got))
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				panic(fmt.Errorf("fetch %s/%d: %v", t, p, err))
			}
		})
		got = append(got, fs.Records()...)
	}
	return got
}

func kv(i int, p int32, t string) *kgo.Record {
	return &kgo.Record{Topic: t, Partition: p, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))}
}

// groupConsumer: a subscribed consumer in group g; no auto commits (the scenarios commit explicitly).
func groupConsumer(g, t string, assigned func(map[string][]int32)) *kgo.Client {
	opts := []kgo.Opt{kgo.ConsumerGroup(g), kgo.ConsumeTopics(t), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(10 * time.Second), kgo.HeartbeatInterval(1 * time.Second),
		kgo.FetchMaxWait(500 * time.Millisecond)}
	if assigned != nil {
		opts = append(opts, kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { assigned(m) }))
	}
	return newClient(opts...)
}

// groupPoll polls a group consumer until it has limit records or wait passed.
func groupPoll(ctx context.Context, cl *kgo.Client, limit int, wait time.Duration) []*kgo.Record {
	c, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var got []*kgo.Record
	for len(got) < limit && c.Err() == nil {
		fs := cl.PollRecords(c, limit-len(got))
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("%s/%d: %w", t, p, err)
			}
		})
		must(ferr, "group poll")
		got = append(got, fs.Records()...)
	}
	return got
}

// closeGroup leaves the group (bounded) and closes the client.
func closeGroup(cl *kgo.Client) {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl.LeaveGroupContext(c)
	cl.Close()
}

func closeGroupConsumer() {
	stateMu.Lock()
	cl := groupCl
	groupCl = nil
	stateMu.Unlock()
	if cl != nil {
		closeGroup(cl)
	}
}

func codecOf(c string) kgo.CompressionCodec {
	return map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}[c]
}

func joinInts(xs []int64) string {
	var s []string
	for _, x := range xs {
		s = append(s, strconv.FormatInt(x, 10))
	}
	return strings.Join(s, ",")
}

// ---------------------------------------------------------------- scenarios

func sCreateTopic(ctx context.Context, s string) {
	t := name("create_topic")
	withAdmin(func(a *kadm.Client) {
		resp, err := a.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, t)
		obs(s, "create_error", errName(err))
		must(err, "CreateTopic")
		obs(s, "create_num_partitions", resp.NumPartitions)
		obs(s, "create_replication_factor", resp.ReplicationFactor)
		if c, ok := resp.Configs["retention.ms"]; ok {
			obs(s, "create_retention.ms", c.MaybeValue()+"/"+c.Source.String())
		}
		check(waitTopic(ctx, a, t, true), "created topic not in metadata")
		tds, err := a.ListTopics(ctx, t)
		must(err, "ListTopics")
		n := len(tds[t].Partitions)
		obs(s, "partitions", n)
		check(n == 3, "expected 3 partitions, metadata says %d", n)
		rs, err := a.CreateTopics(ctx, 3, 1, nil, t)
		must(err, "second CreateTopics")
		derr := rs[t].Err
		obs(s, "duplicate_error", errName(derr))
		check(errors.Is(derr, kerr.TopicAlreadyExists), "second create: expected TOPIC_ALREADY_EXISTS, got %v", derr)
	})
}

func sProduce(codec string) func(context.Context, string) {
	return func(ctx context.Context, s string) {
		t := name(s)
		ensureTopic(ctx, t, 1, nil)
		p := producer(kgo.ProducerBatchCompression(codecOf(codec)))
		defer p.Close()
		var recs []*kgo.Record
		for i := 0; i < 10; i++ {
			recs = append(recs, &kgo.Record{Topic: t, Partition: 0, Key: []byte(fmt.Sprintf("key-%d", i)), Value: payload(codec, i),
				Headers: []kgo.RecordHeader{{Key: "h-index", Value: []byte(fmt.Sprint(i))}, {Key: "h-codec", Value: []byte(codec)},
					{Key: "h-dup", Value: []byte("a")}, {Key: "h-dup", Value: []byte("b")}}})
		}
		offs := produce(ctx, p, recs)
		obs(s, "offsets", joinInts(offs))
		check(joinInts(offs) == "0,1,2,3,4,5,6,7,8,9", "produce acknowledged offsets %v, expected 0..9", offs)
		got := readPartition(ctx, t, 0, 10, 0, 15*time.Second)
		check(len(got) == 10, "read back %d of 10", len(got))
		var ro []int64
		for i, m := range got {
			check(m.Offset == int64(i), "record %d read at offset %d", i, m.Offset)
			check(string(m.Key) == fmt.Sprintf("key-%d", i), "key mismatch at %d: %q", m.Offset, m.Key)
			check(string(m.Value) == string(payload(codec, i)), "value mismatch at %d", m.Offset)
			var hs []string
			for _, h := range m.Headers {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
			want := fmt.Sprintf("h-index=%d,h-codec=%s,h-dup=a,h-dup=b", i, codec)
			check(strings.Join(hs, ",") == want, "headers mismatch at %d: %v", m.Offset, hs)
			ro = append(ro, m.Offset)
		}
		obs(s, "read_offsets", joinInts(ro))
		obs(s, "records_ok", len(got))
		obs(s, "timestamp_type", got[0].Attrs.TimestampType())
	}
}

func sGroupConsume(ctx context.Context, s string) {
	t, g := name(s), name(s)
	stateMu.Lock()
	state["group"], state["group_topic"] = g, t
	stateMu.Unlock()
	ensureTopic(ctx, t, 2, nil)
	p := producer()
	var recs []*kgo.Record
	for i := 0; i < 6; i++ {
		recs = append(recs, kv(i, int32(i%2), t))
	}
	produce(ctx, p, recs)
	p.Close()
	var amu sync.Mutex
	var assigned []int32
	c := groupConsumer(g, t, func(m map[string][]int32) {
		amu.Lock()
		assigned = append(assigned, m[t]...)
		amu.Unlock()
	})
	stateMu.Lock()
	groupCl = c
	stateMu.Unlock()
	got := groupPoll(ctx, c, 6, 25*time.Second)
	var rs []string
	for _, m := range got {
		rs = append(rs, fmt.Sprintf("%d:%d:%s", m.Partition, m.Offset, m.Key))
	}
	sort.Strings(rs)
	obs(s, "records", strings.Join(rs, ","))
	check(len(got) == 6, "group consumer got %d of 6", len(got))
	amu.Lock()
	sort.Slice(assigned, func(i, j int) bool { return assigned[i] < assigned[j] })
	obs(s, "assignment", strings.Trim(strings.Join(strings.Fields(fmt.Sprint(assigned)), ","), "[]"))
	amu.Unlock()
}

func sCommit(ctx context.Context, s string) {
	stateMu.Lock()
	c, t, g := groupCl, state["group_topic"], state["group"]
	stateMu.Unlock()
	check(c != nil, "no group consumer (group_consume failed)")
	defer closeGroupConsumer()
	// The group member commits (OffsetCommit with its generation and member id); the
	// pre-commit hook adds per-partition metadata, which kgo does not set by itself.
	cctx := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				m := fmt.Sprintf("meta-%d", req.Topics[i].Partitions[j].Partition)
				req.Topics[i].Partitions[j].Metadata = &m
			}
		}
		return nil
	})
	var cerr error
	var codes []string
	c.CommitOffsetsSync(cctx, map[string]map[int32]kgo.EpochOffset{t: {0: {Epoch: -1, Offset: 3}, 1: {Epoch: -1, Offset: 3}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			cerr = err
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					codes = append(codes, fmt.Sprintf("%d:%s", rp.Partition, errName(kerr.ErrorForCode(rp.ErrorCode))))
				}
			}
		})
	must(cerr, "CommitOffsetsSync")
	sort.Strings(codes)
	obs(s, "commit_errors", strings.Join(codes, ","))
	check(strings.Join(codes, ",") == "0:NONE,1:NONE", "commit response %v", codes)
	withAdmin(func(a *kadm.Client) {
		r, err := a.FetchOffsets(ctx, g)
		must(err, "FetchOffsets")
		var offs []string
		for _, p := range []int32{0, 1} {
			o, ok := r.Lookup(t, p)
			check(ok, "no committed offset for partition %d", p)
			must(o.Err, fmt.Sprintf("FetchOffsets partition %d", p))
			offs = append(offs, fmt.Sprintf("%d:%d:%s", p, o.At, o.Metadata))
		}
		obs(s, "committed", strings.Join(offs, ","))
		check(strings.Join(offs, ",") == "0:3:meta-0,1:3:meta-1", "committed read back as %v", offs)
	})
}

func sGroupRestart(ctx context.Context, s string) {
	t, g := name(s), name(s)
	ensureTopic(ctx, t, 1, nil)
	p := producer()
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, kv(i, 0, t))
	}
	produce(ctx, p, recs)
	p.Close()
	c1 := groupConsumer(g, t, nil)
	first := groupPoll(ctx, c1, 4, 20*time.Second)
	if len(first) != 4 {
		closeGroup(c1)
		panic(fmt.Errorf("first consumer got %d of 4", len(first)))
	}
	err := c1.CommitRecords(ctx, first[3])
	closeGroup(c1)
	must(err, "CommitRecords")
	var fo []int64
	for _, m := range first {
		fo = append(fo, m.Offset)
	}
	obs(s, "first_offsets", joinInts(fo))
	c2 := groupConsumer(g, t, nil)
	defer closeGroup(c2)
	second := groupPoll(ctx, c2, 6, 20*time.Second)
	second = append(second, groupPoll(ctx, c2, 1, 1500*time.Millisecond)...) // anything beyond 9 would be a bug
	var offs []int64
	for _, m := range second {
		offs = append(offs, m.Offset)
	}
	obs(s, "second_offsets", joinInts(offs))
	check(joinInts(offs) == "4,5,6,7,8,9", "restarted consumer read %v, expected 4..9", offs)
}

func sSeekTimestamp(ctx context.Context, s string) {
	t := name(s)
	ensureTopic(ctx, t, 1, nil)
	base := (time.Now().Unix() - 60) * 1000
	p := producer()
	var recs []*kgo.Record
	for i := 0; i < 3; i++ {
		r := kv(i, 0, t)
		r.Timestamp = time.UnixMilli(base + int64(1000*i)) // explicit CreateTime
		recs = append(recs, r)
	}
	produce(ctx, p, recs)
	p.Close()
	type q struct {
		l  string
		ts int64
	}
	qs := []q{{"before_first", base - 5000}, {"mid", base + 500}, {"exact", base + 2000}, {"after_last", base + 60000}}
	res := map[string]int64{}
	withAdmin(func(a *kadm.Client) {
		for _, x := range qs {
			lo, err := a.ListOffsetsAfterMilli(ctx, x.ts, t)
			must(err, "ListOffsetsAfterMilli")
			o, ok := lo.Lookup(t, 0)
			check(ok, "no offset listed for %s", x.l)
			must(o.Err, "ListOffsetsAfterMilli "+x.l)
			res[x.l] = o.Offset
			obs(s, x.l, o.Offset)
			if o.Offset >= 0 && o.Offset < 3 {
				obs(s, x.l+"_ts_delta", o.Timestamp-base)
			}
		}
		// The broker's own answer for a time after the last record (kadm replaces its -1 by the end offset).
		cl := newClient()
		defer cl.Close()
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, base+60000, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		shards := cl.RequestSharded(ctx, req)
		check(len(shards) == 1, "%d ListOffsets shards", len(shards))
		must(shards[0].Err, "raw ListOffsets")
		resp := shards[0].Resp.(*kmsg.ListOffsetsResponse)
		check(len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1, "raw ListOffsets: malformed response")
		pr := resp.Topics[0].Partitions[0]
		obs(s, "after_last_raw", fmt.Sprintf("%s/%d/%d", errName(kerr.ErrorForCode(pr.ErrorCode)), pr.Offset, pr.Timestamp))
		check(pr.ErrorCode == 0 && pr.Offset == -1 && pr.Timestamp == -1, "raw ListOffsets after the last record: error %d offset %d timestamp %d, expected offset -1 timestamp -1", pr.ErrorCode, pr.Offset, pr.Timestamp)
	})
	// kadm documents: no record at or after the time -> the end offset (3).
	want := map[string]int64{"before_first": 0, "mid": 1, "exact": 2, "after_last": 3}
	check(fmt.Sprint(res) == fmt.Sprint(want), "ListOffsetsAfterMilli gave %v, expected %v", res, want)
	for i, l := range []string{"before_first", "mid", "exact"} {
		want := []int{0, 1, 2}[i]
		got := readPartition(ctx, t, 0, 1, res[l], 10*time.Second)
		check(len(got) == 1, "seek to %d (%s) read nothing", res[l], l)
		check(got[0].Offset == res[l] && string(got[0].Key) == fmt.Sprintf("k%d", want),
			"seek to %d (%s) read offset %d key %s", res[l], l, got[0].Offset, got[0].Key)
		check(got[0].Timestamp.UnixMilli() == base+int64(1000*want), "record %d timestamp %d, produced %d",
			got[0].Offset, got[0].Timestamp.UnixMilli(), base+int64(1000*want))
		obs(s, "seek_"+l, fmt.Sprintf("%d:%s:%d", got[0].Offset, got[0].Key, got[0].Attrs.TimestampType()))
	}
	got := readPartition(ctx, t, 0, 1, res["after_last"], 1500*time.Millisecond)
	obs(s, "seek_after_last_records", len(got))
	check(len(got) == 0, "seek to the end offset read %d record(s)", len(got))
}

func sListGroups(ctx context.Context, s string) {
	stateMu.Lock()
	g := state["group"]
	stateMu.Unlock()
	check(g != "", "no group from group_consume")
	closeGroupConsumer() // if commit did not run
	withAdmin(func(a *kadm.Client) {
		gs, err := a.ListGroups(ctx)
		must(err, "ListGroups")
		lg, ok := gs[g]
		check(ok, "group not in ListGroups (%d groups)", len(gs))
		obs(s, "found", true)
		obs(s, "protocol_type", lg.ProtocolType)
		obs(s, "state", lg.State)
		obs(s, "group_type", lg.GroupType)
	})
}

func sDescribeGroups(ctx context.Context, s string) {
	stateMu.Lock()
	g := state["group"]
	stateMu.Unlock()
	check(g != "", "no group from group_consume")
	closeGroupConsumer()
	withAdmin(func(a *kadm.Client) {
		ds, err := a.DescribeGroups(ctx, g)
		must(err, "DescribeGroups")
		d, ok := ds[g]
		check(ok && len(ds) == 1, "%d descriptions", len(ds))
		obs(s, "error", errName(d.Err))
		obs(s, "state", d.State)
		obs(s, "protocol_type", d.ProtocolType)
		obs(s, "protocol", d.Protocol)
		obs(s, "members", len(d.Members))
		must(d.Err, "DescribeGroups group error")
		check(d.State == "Empty", "state %q, expected Empty", d.State)
		check(d.ProtocolType == "consumer", "protocol type %q, expected consumer", d.ProtocolType)
		check(len(d.Members) == 0, "%d members in an Empty group", len(d.Members))
	})
}

func sDescribeConfigs(ctx context.Context, s string) {
	t := name("create_topic")
	withAdmin(func(a *kadm.Client) {
		rcs, err := a.DescribeTopicConfigs(ctx, t)
		must(err, "DescribeTopicConfigs")
		check(len(rcs) == 1, "%d resources described", len(rcs))
		must(rcs[0].Err, "DescribeTopicConfigs resource error")
		cfg := map[string]kadm.Config{}
		for _, c := range rcs[0].Configs {
			cfg[c.Key] = c
		}
		obs(s, "count_gt_10", len(cfg) > 10)
		r, ok := cfg["retention.ms"]
		check(ok, "retention.ms missing (%d configs)", len(cfg))
		obs(s, "retention.ms", r.MaybeValue())
		obs(s, "retention.ms.source", r.Source)
		// IncludeSynonyms is set by kadm: name:source[:value] of each synonym, most specific first.
		synonyms := func(c kadm.Config) string {
			var syn []string
			for _, sy := range c.Synonyms {
				v := sy.Key + ":" + sy.Source.String()
				if sy.Value != nil {
					v += ":" + *sy.Value
				}
				syn = append(syn, v)
			}
			return strings.Join(syn, ",")
		}
		obs(s, "retention.ms.synonyms", synonyms(r))
		for _, k := range []string{"cleanup.policy", "max.message.bytes", "compression.type", "segment.bytes"} {
			if e, ok := cfg[k]; ok {
				obs(s, k, e.MaybeValue())
				obs(s, k+".source", e.Source)
				obs(s, k+".synonyms", synonyms(e))
			}
		}
		check(r.MaybeValue() == "3600000", "retention.ms = %s", r.MaybeValue())
		check(r.Source == kmsg.ConfigSourceDynamicTopicConfig, "retention.ms source %v, expected DYNAMIC_TOPIC_CONFIG", r.Source)
		cp, ok := cfg["cleanup.policy"]
		check(ok, "cleanup.policy missing")
		check(cp.MaybeValue() == "delete" && cp.Source == kmsg.ConfigSourceDefaultConfig,
			"cleanup.policy = %s (source %v), expected delete (DEFAULT_CONFIG)", cp.MaybeValue(), cp.Source)
	})
}

func sDeleteTopic(ctx context.Context, s string) {
	t := name("create_topic")
	withAdmin(func(a *kadm.Client) {
		rs, err := a.DeleteTopics(ctx, t)
		must(err, "DeleteTopics")
		obs(s, "delete_error", errName(rs[t].Err))
		must(rs[t].Err, "DeleteTopics "+t)
		gone := waitTopic(ctx, a, t, false)
		obs(s, "gone", gone)
		check(gone, "topic still listed 10s after delete")
		tds, err := a.ListTopics(ctx, t)
		must(err, "ListTopics")
		obs(s, "metadata_error", errName(tds[t].Err))
		rs, err = a.DeleteTopics(ctx, t)
		must(err, "second DeleteTopics")
		obs(s, "second_delete_error", errName(rs[t].Err))
		check(errors.Is(rs[t].Err, kerr.UnknownTopicOrPartition), "second delete: expected UNKNOWN_TOPIC_OR_PARTITION, got %v", rs[t].Err)
	})
}

func sIdempotent(ctx context.Context, s string) {
	t := name(s)
	ensureTopic(ctx, t, 1, nil)
	p := producer() // idempotence is franz-go's default (no DisableIdempotentWrite)
	defer p.Close()
	var recs []*kgo.Record
	for i := 0; i < 5; i++ {
		recs = append(recs, kv(i, 0, t))
	}
	offs := produce(ctx, p, recs)
	obs(s, "offsets", joinInts(offs))
	check(joinInts(offs) == "0,1,2,3,4", "acknowledged offsets %v", offs)
	pid := recs[0].ProducerID
	obs(s, "producer_id_set", pid >= 0)
	obs(s, "producer_epoch", recs[0].ProducerEpoch)
	check(pid >= 0, "records were not produced idempotently (producer id %d)", pid)
	got := readPartition(ctx, t, 0, 6, 0, 5*time.Second) // ask for 6: a duplicate would show up
	var ro []int64
	var vals []string
	for _, m := range got {
		ro = append(ro, m.Offset)
		vals = append(vals, string(m.Value))
	}
	obs(s, "read_offsets", joinInts(ro))
	check(joinInts(ro) == "0,1,2,3,4", "read back offsets %v, expected 0..4 once each", ro)
	check(strings.Join(vals, ",") == "v0,v1,v2,v3,v4", "read back values %v", vals)
}

func sMissingTopic(ctx context.Context, s string) {
	if missing == "" {
		panic(skip("COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"))
	}
	// franz-go fails records of a topic that metadata keeps answering UNKNOWN_TOPIC_OR_PARTITION
	// for after UnknownTopicRetries metadata loads (default 4); the delivery timeout is only a backstop.
	cl, err := kgo.NewClient(append(baseOpts(missing), kgo.UnknownTopicRetries(3),
		kgo.RecordDeliveryTimeout(25*time.Second), kgo.AllowAutoTopicCreation())...)
	must(err, "kgo.NewClient")
	defer cl.Close()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res := cl.ProduceSync(c, &kgo.Record{Topic: name(s), Value: []byte("x")})
	err = res.FirstErr()
	obs(s, "error", errName(err))
	check(err != nil, "produce to a missing topic succeeded (is auto-create off?)")
	check(errors.Is(err, kerr.UnknownTopicOrPartition), "expected UNKNOWN_TOPIC_OR_PARTITION, got %v", err)
}

func sOversize(ctx context.Context, s string) {
	t := name(s)
	ensureTopic(ctx, t, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("10000")})
	big := make([]byte, 20000)
	rand.Read(big)
	p := producer(kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordDeliveryTimeout(20*time.Second))
	defer p.Close()
	c, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	err := p.ProduceSync(c, &kgo.Record{Topic: t, Partition: 0, Value: big}).FirstErr()
	obs(s, "error", errName(err))
	check(err != nil, "20000-byte record accepted by a topic with max.message.bytes=10000")
	check(errors.Is(err, kerr.MessageTooLarge), "expected MESSAGE_TOO_LARGE, got %v", err)
	lo := readPartition(ctx, t, 0, 1, 0, 1500*time.Millisecond)
	obs(s, "records_after", len(lo))
	check(len(lo) == 0, "the rejected record was stored (read %d)", len(lo))
}

// ---------------------------------------------------------------- main

func envSeconds(k string, def int) time.Duration {
	if v := os.Getenv(k); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return time.Duration(def) * time.Second
}

func main() {
	args := os.Args[1:]
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, "usage: franz-compat BOOTSTRAP")
		os.Exit(2)
	}
	bootstrap = args[0]
	if rid == "" {
		b := make([]byte, 4)
		rand.Read(b)
		rid = hex.EncodeToString(b)
	}
	type sc struct {
		n string
		f func(context.Context, string)
	}
	all := []sc{{"create_topic", sCreateTopic}}
	for _, c := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
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
	out("# franz-go v1.22.3 kadm v1.20.0")
	out("SCENARIOS " + strings.Join(names, " "))
	time.AfterFunc(envSeconds("COMPAT_DEADLINE", 240), func() {
		for _, x := range sel {
			fail(x.n, "watchdog: program deadline reached")
		}
		finish()
	})
	perScenario := envSeconds("COMPAT_SCENARIO_TIMEOUT", 40)

	// Preflight: one bounded metadata round trip, else FAIL everything at once.
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	pcl, perr := kgo.NewClient(baseOpts(bootstrap)...)
	if perr == nil {
		perr = pcl.Ping(pctx)
		pcl.Close()
	}
	pcancel()
	if perr != nil {
		for _, x := range sel {
			fail(x.n, fmt.Sprintf("preflight against %s failed (broker down?): %v", bootstrap, perr))
		}
		finish()
	}

	for _, x := range sel {
		ctx, cancel := context.WithTimeout(context.Background(), perScenario)
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
			x.f(ctx, x.n)
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
		case <-time.After(perScenario + 2*time.Second):
			fail(x.n, fmt.Sprintf("timed out after %s", perScenario))
		}
		cancel()
	}
	closeGroupConsumer()
	finish()
}
