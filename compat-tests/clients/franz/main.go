// franz-go scenarios: kgo (github.com/twmb/franz-go v1.22.3) for produce, consume and groups,
// kadm (github.com/twmb/franz-go/pkg/kadm v1.20.0) for admin requests.
// Usage: franz-compat BOOTSTRAP  (see compat-tests/README.md for the program contract)
// franz-go negotiates API versions (ApiVersions), so it runs once, at the newest versions both sides know.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	compat "sluice.dev/compat/goharness"
)

const client = "franz-go"

var (
	bootstrap string
	groupMu   sync.Mutex
	groupCl   *kgo.Client // the group_consume consumer, kept in its group until commit is done
)

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
	if compat.Debug {
		o = append(o, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, func() string { return "[kgo] " })))
	}
	return o
}

func newClient(opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append(baseOpts(bootstrap), opts...)...)
	compat.Must(err, "kgo.NewClient")
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
	compat.Must(err, "ListTopics")
	td, ok := tds[t]
	return ok && td.Err == nil
}

func waitTopic(ctx context.Context, a *kadm.Client, t string, present bool) bool {
	return compat.Eventually(10*time.Second, func() bool { return topicExists(ctx, a, t) == present })
}

func ensureTopic(ctx context.Context, t string, partitions int32, configs map[string]*string) {
	withAdmin(func(a *kadm.Client) {
		_, err := a.CreateTopic(ctx, partitions, 1, configs, t)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			compat.Must(err, "CreateTopic "+t)
		}
		compat.Check(waitTopic(ctx, a, t, true), "topic %s not in metadata", t)
	})
}

func produce(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) []int64 {
	res := cl.ProduceSync(ctx, recs...)
	var offs []int64
	for _, r := range res {
		compat.Must(r.Err, "produce")
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
		compat.Must(ferr, "group poll")
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
	groupMu.Lock()
	cl := groupCl
	groupCl = nil
	groupMu.Unlock()
	if cl != nil {
		closeGroup(cl)
	}
}

func codecOf(c string) kgo.CompressionCodec {
	return map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}[c]
}

// ---------------------------------------------------------------- scenarios

func sCreateTopic(ctx context.Context, s string) {
	t := compat.Name("create_topic")
	withAdmin(func(a *kadm.Client) {
		resp, err := a.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, t)
		compat.Obs(s, "create_error", errName(err))
		compat.Must(err, "CreateTopic")
		compat.Obs(s, "create_num_partitions", resp.NumPartitions)
		compat.Obs(s, "create_replication_factor", resp.ReplicationFactor)
		if c, ok := resp.Configs["retention.ms"]; ok {
			compat.Obs(s, "create_retention.ms", c.MaybeValue()+"/"+c.Source.String())
		}
		compat.Check(waitTopic(ctx, a, t, true), "created topic not in metadata")
		tds, err := a.ListTopics(ctx, t)
		compat.Must(err, "ListTopics")
		n := len(tds[t].Partitions)
		compat.Obs(s, "partitions", n)
		compat.Check(n == 3, "expected 3 partitions, metadata says %d", n)
		rs, err := a.CreateTopics(ctx, 3, 1, nil, t)
		compat.Must(err, "second CreateTopics")
		derr := rs[t].Err
		compat.Obs(s, "duplicate_error", errName(derr))
		compat.Check(errors.Is(derr, kerr.TopicAlreadyExists), "second create: expected TOPIC_ALREADY_EXISTS, got %v", derr)
	})
}

func sProduce(codec string) func(context.Context, string) {
	return func(ctx context.Context, s string) {
		t := compat.Name(s)
		ensureTopic(ctx, t, 1, nil)
		p := producer(kgo.ProducerBatchCompression(codecOf(codec)))
		defer p.Close()
		var recs []*kgo.Record
		for i := 0; i < 10; i++ {
			recs = append(recs, &kgo.Record{Topic: t, Partition: 0, Key: []byte(fmt.Sprintf("key-%d", i)), Value: compat.Payload(codec, i),
				Headers: []kgo.RecordHeader{{Key: "h-index", Value: []byte(fmt.Sprint(i))}, {Key: "h-codec", Value: []byte(codec)},
					{Key: "h-dup", Value: []byte("a")}, {Key: "h-dup", Value: []byte("b")}}})
		}
		offs := produce(ctx, p, recs)
		compat.Obs(s, "offsets", compat.JoinInts(offs))
		compat.Check(compat.JoinInts(offs) == "0,1,2,3,4,5,6,7,8,9", "produce acknowledged offsets %v, expected 0..9", offs)
		got := readPartition(ctx, t, 0, 10, 0, 15*time.Second)
		compat.Check(len(got) == 10, "read back %d of 10", len(got))
		var ro []int64
		for i, m := range got {
			compat.Check(m.Offset == int64(i), "record %d read at offset %d", i, m.Offset)
			compat.Check(string(m.Key) == fmt.Sprintf("key-%d", i), "key mismatch at %d: %q", m.Offset, m.Key)
			compat.Check(string(m.Value) == string(compat.Payload(codec, i)), "value mismatch at %d", m.Offset)
			var hs []string
			for _, h := range m.Headers {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
			want := fmt.Sprintf("h-index=%d,h-codec=%s,h-dup=a,h-dup=b", i, codec)
			compat.Check(strings.Join(hs, ",") == want, "headers mismatch at %d: %v", m.Offset, hs)
			ro = append(ro, m.Offset)
		}
		compat.Obs(s, "read_offsets", compat.JoinInts(ro))
		compat.Obs(s, "records_ok", len(got))
		compat.Obs(s, "timestamp_type", got[0].Attrs.TimestampType())
	}
}

func sGroupConsume(ctx context.Context, s string) {
	t, g := compat.Name(s), compat.Name(s)
	compat.SetState("group", g)
	compat.SetState("group_topic", t)
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
	groupMu.Lock()
	groupCl = c
	groupMu.Unlock()
	got := groupPoll(ctx, c, 6, 25*time.Second)
	var rs []string
	for _, m := range got {
		rs = append(rs, fmt.Sprintf("%d:%d:%s", m.Partition, m.Offset, m.Key))
	}
	sort.Strings(rs)
	compat.Obs(s, "records", strings.Join(rs, ","))
	compat.Check(len(got) == 6, "group consumer got %d of 6", len(got))
	amu.Lock()
	sort.Slice(assigned, func(i, j int) bool { return assigned[i] < assigned[j] })
	compat.Obs(s, "assignment", strings.Trim(strings.Join(strings.Fields(fmt.Sprint(assigned)), ","), "[]"))
	amu.Unlock()
}

func sCommit(ctx context.Context, s string) {
	groupMu.Lock()
	c := groupCl
	groupMu.Unlock()
	t, g := compat.GetState("group_topic"), compat.GetState("group")
	compat.Check(c != nil, "no group consumer (group_consume failed)")
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
	compat.Must(cerr, "CommitOffsetsSync")
	sort.Strings(codes)
	compat.Obs(s, "commit_errors", strings.Join(codes, ","))
	compat.Check(strings.Join(codes, ",") == "0:NONE,1:NONE", "commit response %v", codes)
	withAdmin(func(a *kadm.Client) {
		r, err := a.FetchOffsets(ctx, g)
		compat.Must(err, "FetchOffsets")
		var offs []string
		for _, p := range []int32{0, 1} {
			o, ok := r.Lookup(t, p)
			compat.Check(ok, "no committed offset for partition %d", p)
			compat.Must(o.Err, fmt.Sprintf("FetchOffsets partition %d", p))
			offs = append(offs, fmt.Sprintf("%d:%d:%s", p, o.At, o.Metadata))
		}
		compat.Obs(s, "committed", strings.Join(offs, ","))
		compat.Check(strings.Join(offs, ",") == "0:3:meta-0,1:3:meta-1", "committed read back as %v", offs)
	})
}

func sGroupRestart(ctx context.Context, s string) {
	t, g := compat.Name(s), compat.Name(s)
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
	compat.Must(err, "CommitRecords")
	var fo []int64
	for _, m := range first {
		fo = append(fo, m.Offset)
	}
	compat.Obs(s, "first_offsets", compat.JoinInts(fo))
	c2 := groupConsumer(g, t, nil)
	defer closeGroup(c2)
	second := groupPoll(ctx, c2, 6, 20*time.Second)
	second = append(second, groupPoll(ctx, c2, 1, 1500*time.Millisecond)...) // anything beyond 9 would be a bug
	var offs []int64
	for _, m := range second {
		offs = append(offs, m.Offset)
	}
	compat.Obs(s, "second_offsets", compat.JoinInts(offs))
	compat.Check(compat.JoinInts(offs) == "4,5,6,7,8,9", "restarted consumer read %v, expected 4..9", offs)
}

func sSeekTimestamp(ctx context.Context, s string) {
	t := compat.Name(s)
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
			compat.Must(err, "ListOffsetsAfterMilli")
			o, ok := lo.Lookup(t, 0)
			compat.Check(ok, "no offset listed for %s", x.l)
			compat.Must(o.Err, "ListOffsetsAfterMilli "+x.l)
			res[x.l] = o.Offset
			compat.Obs(s, x.l, o.Offset)
			if o.Offset >= 0 && o.Offset < 3 {
				compat.Obs(s, x.l+"_ts_delta", o.Timestamp-base)
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
		compat.Check(len(shards) == 1, "%d ListOffsets shards", len(shards))
		compat.Must(shards[0].Err, "raw ListOffsets")
		resp := shards[0].Resp.(*kmsg.ListOffsetsResponse)
		compat.Check(len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1, "raw ListOffsets: malformed response")
		pr := resp.Topics[0].Partitions[0]
		compat.Obs(s, "after_last_raw", fmt.Sprintf("%s/%d/%d", errName(kerr.ErrorForCode(pr.ErrorCode)), pr.Offset, pr.Timestamp))
		compat.Check(pr.ErrorCode == 0 && pr.Offset == -1 && pr.Timestamp == -1, "raw ListOffsets after the last record: error %d offset %d timestamp %d, expected offset -1 timestamp -1", pr.ErrorCode, pr.Offset, pr.Timestamp)
	})
	// kadm documents: no record at or after the time -> the end offset (3).
	want := map[string]int64{"before_first": 0, "mid": 1, "exact": 2, "after_last": 3}
	compat.Check(fmt.Sprint(res) == fmt.Sprint(want), "ListOffsetsAfterMilli gave %v, expected %v", res, want)
	for i, l := range []string{"before_first", "mid", "exact"} {
		want := []int{0, 1, 2}[i]
		got := readPartition(ctx, t, 0, 1, res[l], 10*time.Second)
		compat.Check(len(got) == 1, "seek to %d (%s) read nothing", res[l], l)
		compat.Check(got[0].Offset == res[l] && string(got[0].Key) == fmt.Sprintf("k%d", want),
			"seek to %d (%s) read offset %d key %s", res[l], l, got[0].Offset, got[0].Key)
		compat.Check(got[0].Timestamp.UnixMilli() == base+int64(1000*want), "record %d timestamp %d, produced %d",
			got[0].Offset, got[0].Timestamp.UnixMilli(), base+int64(1000*want))
		compat.Obs(s, "seek_"+l, fmt.Sprintf("%d:%s:%d", got[0].Offset, got[0].Key, got[0].Attrs.TimestampType()))
	}
	got := readPartition(ctx, t, 0, 1, res["after_last"], 1500*time.Millisecond)
	compat.Obs(s, "seek_after_last_records", len(got))
	compat.Check(len(got) == 0, "seek to the end offset read %d record(s)", len(got))
}

func sListGroups(ctx context.Context, s string) {
	g := compat.GetState("group")
	compat.Check(g != "", "no group from group_consume")
	closeGroupConsumer() // if commit did not run
	withAdmin(func(a *kadm.Client) {
		gs, err := a.ListGroups(ctx)
		compat.Must(err, "ListGroups")
		lg, ok := gs[g]
		compat.Check(ok, "group not in ListGroups (%d groups)", len(gs))
		compat.Obs(s, "found", true)
		compat.Obs(s, "protocol_type", lg.ProtocolType)
		compat.Obs(s, "state", lg.State)
		compat.Obs(s, "group_type", lg.GroupType)
	})
}

func sDescribeGroups(ctx context.Context, s string) {
	g := compat.GetState("group")
	compat.Check(g != "", "no group from group_consume")
	closeGroupConsumer()
	withAdmin(func(a *kadm.Client) {
		ds, err := a.DescribeGroups(ctx, g)
		compat.Must(err, "DescribeGroups")
		d, ok := ds[g]
		compat.Check(ok && len(ds) == 1, "%d descriptions", len(ds))
		compat.Obs(s, "error", errName(d.Err))
		compat.Obs(s, "state", d.State)
		compat.Obs(s, "protocol_type", d.ProtocolType)
		compat.Obs(s, "protocol", d.Protocol)
		compat.Obs(s, "members", len(d.Members))
		compat.Must(d.Err, "DescribeGroups group error")
		compat.Check(d.State == "Empty", "state %q, expected Empty", d.State)
		compat.Check(d.ProtocolType == "consumer", "protocol type %q, expected consumer", d.ProtocolType)
		compat.Check(len(d.Members) == 0, "%d members in an Empty group", len(d.Members))
	})
}

func sDescribeConfigs(ctx context.Context, s string) {
	t := compat.Name("create_topic")
	withAdmin(func(a *kadm.Client) {
		rcs, err := a.DescribeTopicConfigs(ctx, t)
		compat.Must(err, "DescribeTopicConfigs")
		compat.Check(len(rcs) == 1, "%d resources described", len(rcs))
		compat.Must(rcs[0].Err, "DescribeTopicConfigs resource error")
		cfg := map[string]kadm.Config{}
		for _, c := range rcs[0].Configs {
			cfg[c.Key] = c
		}
		compat.Obs(s, "count_gt_10", len(cfg) > 10)
		r, ok := cfg["retention.ms"]
		compat.Check(ok, "retention.ms missing (%d configs)", len(cfg))
		compat.Obs(s, "retention.ms", r.MaybeValue())
		compat.Obs(s, "retention.ms.source", r.Source)
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
		compat.Obs(s, "retention.ms.synonyms", synonyms(r))
		for _, k := range []string{"cleanup.policy", "max.message.bytes", "compression.type", "segment.bytes"} {
			if e, ok := cfg[k]; ok {
				compat.Obs(s, k, e.MaybeValue())
				compat.Obs(s, k+".source", e.Source)
				compat.Obs(s, k+".synonyms", synonyms(e))
			}
		}
		compat.Check(r.MaybeValue() == "3600000", "retention.ms = %s", r.MaybeValue())
		compat.Check(r.Source == kmsg.ConfigSourceDynamicTopicConfig, "retention.ms source %v, expected DYNAMIC_TOPIC_CONFIG", r.Source)
		cp, ok := cfg["cleanup.policy"]
		compat.Check(ok, "cleanup.policy missing")
		compat.Check(cp.MaybeValue() == "delete" && cp.Source == kmsg.ConfigSourceDefaultConfig,
			"cleanup.policy = %s (source %v), expected delete (DEFAULT_CONFIG)", cp.MaybeValue(), cp.Source)
	})
}

func sDeleteTopic(ctx context.Context, s string) {
	t := compat.Name("create_topic")
	withAdmin(func(a *kadm.Client) {
		rs, err := a.DeleteTopics(ctx, t)
		compat.Must(err, "DeleteTopics")
		compat.Obs(s, "delete_error", errName(rs[t].Err))
		compat.Must(rs[t].Err, "DeleteTopics "+t)
		gone := waitTopic(ctx, a, t, false)
		compat.Obs(s, "gone", gone)
		compat.Check(gone, "topic still listed 10s after delete")
		tds, err := a.ListTopics(ctx, t)
		compat.Must(err, "ListTopics")
		compat.Obs(s, "metadata_error", errName(tds[t].Err))
		rs, err = a.DeleteTopics(ctx, t)
		compat.Must(err, "second DeleteTopics")
		compat.Obs(s, "second_delete_error", errName(rs[t].Err))
		compat.Check(errors.Is(rs[t].Err, kerr.UnknownTopicOrPartition), "second delete: expected UNKNOWN_TOPIC_OR_PARTITION, got %v", rs[t].Err)
	})
}

func sIdempotent(ctx context.Context, s string) {
	t := compat.Name(s)
	ensureTopic(ctx, t, 1, nil)
	p := producer() // idempotence is franz-go's default (no DisableIdempotentWrite)
	defer p.Close()
	var recs []*kgo.Record
	for i := 0; i < 5; i++ {
		recs = append(recs, kv(i, 0, t))
	}
	offs := produce(ctx, p, recs)
	compat.Obs(s, "offsets", compat.JoinInts(offs))
	compat.Check(compat.JoinInts(offs) == "0,1,2,3,4", "acknowledged offsets %v", offs)
	pid := recs[0].ProducerID
	compat.Obs(s, "producer_id_set", pid >= 0)
	compat.Obs(s, "producer_epoch", recs[0].ProducerEpoch)
	compat.Check(pid >= 0, "records were not produced idempotently (producer id %d)", pid)
	got := readPartition(ctx, t, 0, 6, 0, 5*time.Second) // ask for 6: a duplicate would show up
	var ro []int64
	var vals []string
	for _, m := range got {
		ro = append(ro, m.Offset)
		vals = append(vals, string(m.Value))
	}
	compat.Obs(s, "read_offsets", compat.JoinInts(ro))
	compat.Check(compat.JoinInts(ro) == "0,1,2,3,4", "read back offsets %v, expected 0..4 once each", ro)
	compat.Check(strings.Join(vals, ",") == "v0,v1,v2,v3,v4", "read back values %v", vals)
}

func sMissingTopic(ctx context.Context, s string) {
	if compat.Missing == "" {
		panic(compat.Skip("COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"))
	}
	// franz-go fails records of a topic that metadata keeps answering UNKNOWN_TOPIC_OR_PARTITION
	// for after UnknownTopicRetries metadata loads (default 4); the delivery timeout is only a backstop.
	cl, err := kgo.NewClient(append(baseOpts(compat.Missing), kgo.UnknownTopicRetries(3),
		kgo.RecordDeliveryTimeout(25*time.Second), kgo.AllowAutoTopicCreation())...)
	compat.Must(err, "kgo.NewClient")
	defer cl.Close()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res := cl.ProduceSync(c, &kgo.Record{Topic: compat.Name(s), Value: []byte("x")})
	err = res.FirstErr()
	compat.Obs(s, "error", errName(err))
	compat.Check(err != nil, "produce to a missing topic succeeded (is auto-create off?)")
	compat.Check(errors.Is(err, kerr.UnknownTopicOrPartition), "expected UNKNOWN_TOPIC_OR_PARTITION, got %v", err)
}

func sOversize(ctx context.Context, s string) {
	t := compat.Name(s)
	ensureTopic(ctx, t, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("10000")})
	big := make([]byte, 20000)
	rand.Read(big)
	p := producer(kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordDeliveryTimeout(20*time.Second))
	defer p.Close()
	c, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	err := p.ProduceSync(c, &kgo.Record{Topic: t, Partition: 0, Value: big}).FirstErr()
	compat.Obs(s, "error", errName(err))
	compat.Check(err != nil, "20000-byte record accepted by a topic with max.message.bytes=10000")
	compat.Check(errors.Is(err, kerr.MessageTooLarge), "expected MESSAGE_TOO_LARGE, got %v", err)
	lo := readPartition(ctx, t, 0, 1, 0, 1500*time.Millisecond)
	compat.Obs(s, "records_after", len(lo))
	compat.Check(len(lo) == 0, "the rejected record was stored (read %d)", len(lo))
}

// ---------------------------------------------------------------- main

func main() {
	bootstrap = compat.Bootstrap(os.Args[1:], "usage: franz-compat BOOTSTRAP")
	all := []compat.Scenario{{Name: "create_topic", Run: sCreateTopic}}
	for _, c := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		all = append(all, compat.Scenario{Name: "produce_" + c, Run: sProduce(c)})
	}
	all = append(all, []compat.Scenario{{Name: "group_consume", Run: sGroupConsume}, {Name: "commit", Run: sCommit},
		{Name: "group_restart", Run: sGroupRestart}, {Name: "seek_timestamp", Run: sSeekTimestamp},
		{Name: "list_groups", Run: sListGroups}, {Name: "describe_groups", Run: sDescribeGroups},
		{Name: "describe_configs", Run: sDescribeConfigs}, {Name: "delete_topic", Run: sDeleteTopic},
		{Name: "idempotent_producer", Run: sIdempotent}, {Name: "missing_topic", Run: sMissingTopic},
		{Name: "oversize_record", Run: sOversize},
		{Name: "txn_commit_abort", Run: sTxnCommitAbort}, {Name: "txn_consume_transform_produce", Run: sTxnConsumeTransformProduce},
		{Name: "txn_zombie_fence", Run: sTxnZombieFence}, {Name: "txn_timeout", Run: sTxnTimeout},
		{Name: "secure_scram_sasl_ssl", Run: sScramSaslSsl}}...)
	compat.Run(compat.Program{
		Client:    client,
		Header:    "# franz-go v1.22.3 kadm v1.20.0",
		Scenarios: all,
		// One bounded metadata round trip.
		Preflight: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cl, err := kgo.NewClient(baseOpts(bootstrap)...)
			if err == nil {
				err = cl.Ping(ctx)
				cl.Close()
			}
			return err
		},
		Grace:          2 * time.Second, // past the scenario context's deadline
		RedactFailures: true,
		AfterAll:       closeGroupConsumer,
	})
}
