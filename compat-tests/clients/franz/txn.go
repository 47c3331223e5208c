// The transaction scenarios (txn_*) of the franz-go program: kgo.TransactionalID with
// BeginTransaction / EndTransaction(TryCommit|TryAbort), kgo.GroupTransactSession for the
// consume-transform-produce loop, read back with kgo.FetchIsolationLevel(kgo.ReadCommitted()) and
// without. Every transactional id carries the run id.
package main

import (
	"context"
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
	compat "sluice.dev/compat/goharness"
)

func txnClient(txid string, opts ...kgo.Opt) *kgo.Client {
	return producer(append([]kgo.Opt{kgo.TransactionalID(txid)}, opts...)...)
}

// readIso reads partitions 0..parts-1 of t from the start under an isolation level until it has n
// records or wait passed, then polls once more (1s) so that an extra record (a duplicate, an aborted
// one) shows. Partition -> records in offset order.
func readIso(ctx context.Context, t string, parts int32, committed bool, n int, wait time.Duration) map[int32][]*kgo.Record {
	offs := map[int32]kgo.Offset{}
	for p := int32(0); p < parts; p++ {
		offs[p] = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: offs}), kgo.FetchMaxWait(500 * time.Millisecond)}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := newClient(opts...)
	defer cl.Close()
	got := map[int32][]*kgo.Record{}
	poll := func(d time.Duration, want int) int {
		c, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		k := 0
		for k < want && c.Err() == nil {
			fs := cl.PollRecords(c, want-k)
			fs.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					panic(fmt.Errorf("fetch %s/%d: %v", t, p, err))
				}
			})
			for _, r := range fs.Records() {
				got[r.Partition] = append(got[r.Partition], r)
				k++
			}
		}
		return k
	}
	k := poll(wait, n)
	poll(time.Second, n+10-k)
	return got
}

// values: p0=v,v;p1=v (every partition 0..parts-1, in offset order); offsets likewise.
func values(got map[int32][]*kgo.Record, parts int32) string {
	return perPartition(got, parts, func(r *kgo.Record) string { return string(r.Value) })
}

func offsetsOf(got map[int32][]*kgo.Record, parts int32) string {
	return perPartition(got, parts, func(r *kgo.Record) string { return fmt.Sprint(r.Offset) })
}

func perPartition(got map[int32][]*kgo.Record, parts int32, f func(*kgo.Record) string) string {
	var ps []string
	for p := int32(0); p < parts; p++ {
		var vs []string
		for _, r := range got[p] {
			vs = append(vs, f(r))
		}
		ps = append(ps, fmt.Sprintf("p%d=%s", p, strings.Join(vs, ",")))
	}
	return strings.Join(ps, ";")
}

// ends: the high watermarks (committed=false) or last stable offsets (committed=true) of t, p0=N,p1=N.
func ends(ctx context.Context, t string, parts int32, committed bool) string {
	var out string
	withAdmin(func(a *kadm.Client) {
		list := a.ListEndOffsets
		if committed {
			list = a.ListCommittedOffsets
		}
		lo, err := list(ctx, t)
		compat.Must(err, "ListOffsets")
		var ps []string
		for p := int32(0); p < parts; p++ {
			o, ok := lo.Lookup(t, p)
			compat.Check(ok, "no offset listed for %s/%d", t, p)
			compat.Must(o.Err, fmt.Sprintf("ListOffsets %s/%d", t, p))
			ps = append(ps, fmt.Sprintf("p%d=%d", p, o.Offset))
		}
		out = strings.Join(ps, ",")
	})
	return out
}

// produceTxn produces recs with ProduceSync (so they are in the log) and returns partition:offset of
// each, sorted.
func produceTxn(ctx context.Context, cl *kgo.Client, what string, recs ...*kgo.Record) string {
	res := cl.ProduceSync(ctx, recs...)
	var acked []string
	for _, r := range res {
		compat.Must(r.Err, what)
		acked = append(acked, fmt.Sprintf("%d:%d", r.Record.Partition, r.Record.Offset))
	}
	sort.Strings(acked) // kgo completes the partitions' promises in no fixed order
	return strings.Join(acked, ",")
}

func rec(t string, p int32, k, v string) *kgo.Record {
	return &kgo.Record{Topic: t, Partition: p, Key: []byte(k), Value: []byte(v)}
}

// ---------------------------------------------------------------- txn_commit_abort

// One transactional client on a fresh 3-partition topic: commit 6 records, abort 3 (produced
// synchronously first, so they are in the log), commit 3. read_committed returns exactly the 9
// committed records in order per partition, read_uncommitted the aborted ones too; every transaction
// leaves a marker in each partition, so the end offsets (observed) exceed the record counts.
func sTxnCommitAbort(ctx context.Context, s string) {
	t := compat.Name(s)
	ensureTopic(ctx, t, 3, nil)
	cl := txnClient(compat.Name(s))
	defer cl.Close()
	txn := func(label string, commit kgo.TransactionEndTry, recs ...*kgo.Record) {
		compat.Must(cl.BeginTransaction(), "BeginTransaction")
		compat.Obs(s, "acked_"+label, produceTxn(ctx, cl, "produce in "+label, recs...))
		err := cl.EndTransaction(ctx, commit)
		compat.Obs(s, "end_"+label, errName(err))
		compat.Must(err, "EndTransaction "+label)
	}
	var c1, ab, c2 []*kgo.Record
	for i := 0; i < 6; i++ {
		c1 = append(c1, rec(t, int32(i%3), fmt.Sprintf("k%d", i), fmt.Sprintf("c1-%d", i)))
	}
	for i := 0; i < 3; i++ {
		ab = append(ab, rec(t, int32(i), fmt.Sprintf("a%d", i), fmt.Sprintf("a-%d", i)))
		c2 = append(c2, rec(t, int32(i), fmt.Sprintf("k%d", i), fmt.Sprintf("c2-%d", i)))
	}
	txn("commit1", kgo.TryCommit, c1...)
	txn("abort", kgo.TryAbort, ab...)
	txn("commit2", kgo.TryCommit, c2...)
	rc := readIso(ctx, t, 3, true, 9, 15*time.Second)
	ru := readIso(ctx, t, 3, false, 12, 15*time.Second)
	compat.Obs(s, "read_committed", values(rc, 3))
	compat.Obs(s, "read_committed_offsets", offsetsOf(rc, 3))
	compat.Obs(s, "read_uncommitted", values(ru, 3))
	compat.Obs(s, "read_uncommitted_offsets", offsetsOf(ru, 3))
	hw, lso := ends(ctx, t, 3, false), ends(ctx, t, 3, true)
	compat.Obs(s, "end_offsets", hw)
	compat.Obs(s, "last_stable_offsets", lso)
	wantRc := "p0=c1-0,c1-3,c2-0;p1=c1-1,c1-4,c2-1;p2=c1-2,c1-5,c2-2"
	wantRu := "p0=c1-0,c1-3,a-0,c2-0;p1=c1-1,c1-4,a-1,c2-1;p2=c1-2,c1-5,a-2,c2-2"
	compat.Check(values(rc, 3) == wantRc, "read_committed read %s, expected %s", values(rc, 3), wantRc)
	compat.Check(values(ru, 3) == wantRu, "read_uncommitted read %s, expected %s", values(ru, 3), wantRu)
	for _, e := range strings.Split(hw, ",") {
		var p, o int
		fmt.Sscanf(e, "p%d=%d", &p, &o)
		compat.Check(o > 4, "end offset of partition %d is %d: 4 records and 3 transaction markers need more", p, o)
	}
	compat.Check(lso == hw, "last stable offsets %s != end offsets %s with no transaction open", lso, hw)
}

// ---------------------------------------------------------------- txn_consume_transform_produce

// An ETL loop in kgo.GroupTransactSession (read_committed, the group's offsets committed in the
// transaction): 12 input records on 2 partitions, at most 3 per transaction, each written as "T:"+value
// to the same partition of the output topic. After the first session's first commit a second session
// (another transactional id, same group) joins and the first waits until the rebalance gave the second
// a partition, so both the rebalance abort path and the hand-over of committed offsets run. Afterwards
// the output under read_committed is exactly the transformed input (no duplicate, none missing) and the
// group's committed offsets equal the input's end offsets.
func sTxnConsumeTransformProduce(ctx context.Context, s string) {
	in, out, g := compat.Name(s)+"-in", compat.Name(s)+"-out", compat.Name(s)
	ensureTopic(ctx, in, 2, nil)
	ensureTopic(ctx, out, 2, nil)
	p := producer()
	var recs []*kgo.Record
	for i := 0; i < 12; i++ {
		recs = append(recs, kv(i, int32(i%2), in))
	}
	produce(ctx, p, recs)
	p.Close()

	var mu sync.Mutex
	done := map[string]bool{} // partition:offset of input records whose transaction committed
	var loopErr error
	committedTxns, abortedTxns := 0, 0
	secondAssigned := make(chan struct{})
	var secondOnce sync.Once
	firstCommitted := make(chan struct{})
	var firstOnce sync.Once
	stop := make(chan struct{})
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()

	session := func(id string, assigned func()) *kgo.GroupTransactSession {
		opts := append(baseOpts(bootstrap), kgo.TransactionalID(id), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ConsumerGroup(g), kgo.ConsumeTopics(in),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(10*time.Second),
			kgo.HeartbeatInterval(500*time.Millisecond), kgo.FetchMaxWait(500*time.Millisecond))
		if assigned != nil {
			opts = append(opts, kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				if len(m[in]) > 0 {
					assigned()
				}
			}))
		}
		sess, err := kgo.NewGroupTransactSession(opts...)
		compat.Must(err, "NewGroupTransactSession")
		return sess
	}
	loop := func(sess *kgo.GroupTransactSession, first bool, wg *sync.WaitGroup) {
		defer wg.Done()
		fail := func(err error) {
			mu.Lock()
			if loopErr == nil {
				loopErr = err
			}
			mu.Unlock()
			lcancel()
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			pctx, cancel := context.WithTimeout(lctx, 500*time.Millisecond)
			fs := sess.PollRecords(pctx, 3)
			cancel()
			var ferr error
			fs.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
					ferr = fmt.Errorf("poll %s/%d: %w", t, p, err)
				}
			})
			if ferr != nil {
				fail(ferr)
				return
			}
			rs := fs.Records()
			if len(rs) == 0 {
				if lctx.Err() != nil {
					return
				}
				continue
			}
			if err := sess.Begin(); err != nil {
				fail(fmt.Errorf("Begin: %w", err))
				return
			}
			var outs []*kgo.Record
			for _, r := range rs {
				outs = append(outs, &kgo.Record{Topic: out, Partition: r.Partition, Key: r.Key, Value: append([]byte("T:"), r.Value...)})
			}
			for _, pr := range sess.ProduceSync(lctx, outs...) {
				if pr.Err != nil {
					fail(fmt.Errorf("produce in the transaction: %w", pr.Err))
					return
				}
			}
			committed, err := sess.End(lctx, kgo.TryCommit)
			if err != nil {
				fail(fmt.Errorf("End: %w", err))
				return
			}
			mu.Lock()
			if committed {
				committedTxns++
				for _, r := range rs {
					done[fmt.Sprintf("%d:%d", r.Partition, r.Offset)] = true
				}
				if len(done) == 12 {
					select {
					case <-stop:
					default:
						close(stop)
					}
				}
			} else {
				abortedTxns++
			}
			mu.Unlock()
			if first && committed {
				firstOnce.Do(func() {
					close(firstCommitted)
					// Hold still until the second session owns a partition (a rebalance revoked one of ours).
					select {
					case <-secondAssigned:
					case <-time.After(15 * time.Second):
					case <-lctx.Done():
					}
				})
			}
		}
	}
	var wg sync.WaitGroup
	s1 := session(compat.Name(s)+"-1", nil)
	defer s1.Close()
	wg.Add(1)
	go loop(s1, true, &wg)
	var s2 *kgo.GroupTransactSession
	select {
	case <-firstCommitted:
	case <-lctx.Done():
	case <-time.After(20 * time.Second):
	}
	secondJoined := false
	if lctx.Err() == nil {
		s2 = session(compat.Name(s)+"-2", func() { secondOnce.Do(func() { close(secondAssigned) }) })
		defer s2.Close()
		secondJoined = true
		wg.Add(1)
		go loop(s2, false, &wg)
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-stop:
		<-finished
	case <-time.After(30 * time.Second):
		lcancel()
		<-finished
	}
	mu.Lock()
	n, cerr, ctx2, atx := len(done), loopErr, committedTxns, abortedTxns
	mu.Unlock()
	select {
	case <-secondAssigned:
		compat.Obs(s, "second_session_assigned", true)
	default:
		compat.Obs(s, "second_session_assigned", false)
	}
	fmt.Fprintf(os.Stderr, "franz txn_consume_transform_produce: %d committed, %d aborted transactions\n", ctx2, atx)
	compat.Must(cerr, "ETL loop")
	compat.Check(secondJoined, "the first session committed nothing within 20s")
	compat.Obs(s, "consumed_committed", n)
	compat.Check(n == 12, "the sessions committed transactions for %d of 12 input records", n)
	o := readIso(ctx, out, 2, true, 12, 15*time.Second)
	compat.Obs(s, "output", values(o, 2))
	want := "p0=T:v0,T:v2,T:v4,T:v6,T:v8,T:v10;p1=T:v1,T:v3,T:v5,T:v7,T:v9,T:v11"
	compat.Check(values(o, 2) == want, "read_committed output %s, expected %s", values(o, 2), want)
	inEnd := ends(ctx, in, 2, false)
	withAdmin(func(a *kadm.Client) {
		r, err := a.FetchOffsets(ctx, g)
		compat.Must(err, "FetchOffsets")
		var offs []string
		for p := int32(0); p < 2; p++ {
			o, ok := r.Lookup(in, p)
			compat.Check(ok, "no committed offset for partition %d", p)
			compat.Must(o.Err, fmt.Sprintf("FetchOffsets partition %d", p))
			offs = append(offs, fmt.Sprintf("p%d=%d", p, o.At))
		}
		committed := strings.Join(offs, ",")
		compat.Obs(s, "committed", committed)
		compat.Obs(s, "input_end_offsets", inEnd)
		compat.Check(committed == inEnd, "group committed offsets %s != input end offsets %s", committed, inEnd)
	})
}

// ---------------------------------------------------------------- txn_zombie_fence

// Client A (transactional id X) begins a transaction and produces 2 records; client B with the same
// id loads its producer id (InitProducerId), which fences A and aborts A's transaction. A's next
// produce and its commit fail (the errors are observed; a fencing error is required of the commit);
// read_committed sees none of A's records; B's own transaction commits.
func sTxnZombieFence(ctx context.Context, s string) {
	t, txid := compat.Name(s), compat.Name(s)
	ensureTopic(ctx, t, 1, nil)
	a := txnClient(txid)
	defer a.Close()
	compat.Must(a.BeginTransaction(), "A BeginTransaction")
	compat.Obs(s, "acked_a", produceTxn(ctx, a, "A produce", rec(t, 0, "a0", "a-0"), rec(t, 0, "a1", "a-1")))
	b := txnClient(txid)
	defer b.Close()
	_, _, err := b.ProducerID(ctx)
	compat.Obs(s, "b_init", errName(err))
	compat.Must(err, "B InitProducerId")
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	perr := a.ProduceSync(pctx, rec(t, 0, "a2", "a-2")).FirstErr()
	cancel()
	compat.Obs(s, "a_send_error", errName(perr))
	cerr := a.EndTransaction(ctx, kgo.TryCommit)
	compat.Obs(s, "a_commit_error", errName(cerr))
	compat.Check(perr != nil || cerr != nil, "the fenced client produced and committed after another initialized its transactional id")
	compat.Check(cerr != nil, "the fenced client's commit succeeded (its produce failed with %v)", perr)
	fenced := func(err error) bool {
		return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
	}
	// kgo answers a commit on a failed producer id with OPERATION_NOT_ATTEMPTED (the fencing error
	// is then the produce's).
	compat.Check(fenced(cerr) || (errors.Is(cerr, kerr.OperationNotAttempted) && fenced(perr)),
		"the fenced client's commit failed with %v (produce: %v), expected a fencing error", cerr, perr)
	compat.Must(b.BeginTransaction(), "B BeginTransaction")
	compat.Obs(s, "acked_b", produceTxn(ctx, b, "B produce", rec(t, 0, "b0", "b-0"), rec(t, 0, "b1", "b-1")))
	compat.Must(b.EndTransaction(ctx, kgo.TryCommit), "B commit")
	rc := readIso(ctx, t, 1, true, 2, 15*time.Second)
	ru := readIso(ctx, t, 1, false, 4, 15*time.Second)
	compat.Obs(s, "read_committed", values(rc, 1))
	compat.Obs(s, "read_committed_offsets", offsetsOf(rc, 1))
	compat.Obs(s, "read_uncommitted", values(ru, 1))
	compat.Obs(s, "end_offsets", ends(ctx, t, 1, false))
	compat.Check(values(rc, 1) == "p0=b-0,b-1", "read_committed read %s, expected only B's b-0,b-1", values(rc, 1))
	compat.Check(values(ru, 1) == "p0=a-0,a-1,b-0,b-1", "read_uncommitted read %s, expected a-0,a-1,b-0,b-1", values(ru, 1))
}

// ---------------------------------------------------------------- txn_timeout

// A transaction with TransactionTimeout(5s) is left open after producing one record; a plain
// producer writes one record after it. While open, the last stable offset stays 0; once the broker
// aborts the transaction read_committed gets exactly the plain record, and the late commit fails
// (observed). Then an InitProducerId with a timeout above transaction.max.timeout.ms (900000) fails
// with INVALID_TRANSACTION_TIMEOUT.
func sTxnTimeout(ctx context.Context, s string) {
	t, txid := compat.Name(s), compat.Name(s)
	ensureTopic(ctx, t, 1, nil)
	p := txnClient(txid, kgo.TransactionTimeout(5*time.Second))
	defer p.Close()
	compat.Must(p.BeginTransaction(), "BeginTransaction")
	t0 := time.Now()
	compat.Obs(s, "acked_open", produceTxn(ctx, p, "transactional produce", rec(t, 0, "o0", "open-0")))
	plain := producer()
	compat.Obs(s, "acked_plain", produceTxn(ctx, plain, "plain produce", rec(t, 0, "p0", "after-0")))
	plain.Close()
	lso, hw := ends(ctx, t, 1, true), ends(ctx, t, 1, false)
	compat.Obs(s, "lso_while_open", strings.TrimPrefix(lso, "p0="))
	compat.Obs(s, "end_while_open", strings.TrimPrefix(hw, "p0="))
	compat.Check(lso == "p0=0", "last stable offset %s while the transaction at offset 0 is open, expected 0 (listed %.1fs after it began)",
		lso, time.Since(t0).Seconds())
	got := readIso(ctx, t, 1, true, 1, 25*time.Second)
	var read []string
	for _, r := range got[0] {
		read = append(read, fmt.Sprintf("%d:%s", r.Offset, r.Value))
	}
	compat.Obs(s, "read_committed", strings.Join(read, ","))
	compat.Check(len(read) > 0, "read_committed saw nothing within 25s: the timed-out transaction was not aborted")
	compat.Check(strings.Join(read, ",") == "1:after-0", "read_committed read %v, expected only 1:after-0", read)
	lso, hw = ends(ctx, t, 1, true), ends(ctx, t, 1, false)
	compat.Obs(s, "last_stable_offset", strings.TrimPrefix(lso, "p0="))
	compat.Obs(s, "end_offset", strings.TrimPrefix(hw, "p0="))
	compat.Check(lso == hw && hw != "p0=2", "after the abort: last stable offset %s, end offset %s; expected equal and past the 2 records", lso, hw)
	err := p.EndTransaction(ctx, kgo.TryCommit)
	compat.Obs(s, "late_commit_error", errName(err))
	compat.Check(err != nil, "committing the transaction the broker aborted succeeded")
	rc := readIso(ctx, t, 1, true, 1, 5*time.Second)
	compat.Obs(s, "read_committed_after_commit", values(rc, 1))
	compat.Check(values(rc, 1) == "p0=after-0", "after the late commit read_committed reads %s", values(rc, 1))
	q := txnClient(compat.Name(s)+"-too-long", kgo.TransactionTimeout(900001*time.Millisecond))
	defer q.Close()
	_, _, err = q.ProducerID(ctx)
	compat.Obs(s, "too_long_timeout_error", errName(err))
	compat.Check(errors.Is(err, kerr.InvalidTransactionTimeout), "InitProducerId with a 900001 ms timeout: expected INVALID_TRANSACTION_TIMEOUT, got %v", err)
}
