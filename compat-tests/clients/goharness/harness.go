// Package goharness is the client-independent part of the Go compat programs (clients/franz,
// clients/sarama, clients/kafkago): the program contract of compat-tests/README.md (arguments,
// environment, the SCENARIOS / PASS / FAIL / SKIP / OBS / summary lines, exit codes), the scenario
// loop with its preflight, per-scenario timeout and watchdog, and small helpers the scenarios share
// (topic names, payloads, Kafka error names, assertions). The scenarios themselves, which call the
// client libraries, stay in each program. The programs import it as `compat` through a replace
// directive (replace sluice.dev/compat/goharness => ../goharness); it has no dependencies.
package goharness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The environment of the program contract.
var (
	// RunID is COMPAT_RUN_ID (the name suffix), else 8 random hex digits.
	RunID = runID()
	// Missing is COMPAT_MISSING_BOOTSTRAP, the auto-create-off broker ("" when there is none).
	Missing = os.Getenv("COMPAT_MISSING_BOOTSTRAP")
	// Debug is set by COMPAT_DEBUG: the programs turn on their library's logging (stderr).
	Debug = os.Getenv("COMPAT_DEBUG") != ""
)

func runID() string {
	if rid := os.Getenv("COMPAT_RUN_ID"); rid != "" {
		return rid
	}
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Bootstrap is the program's only argument, BOOTSTRAP (os.Args[1:] or flag.Args()); anything
// else prints usage to stderr and exits 2.
func Bootstrap(args []string, usage string) string {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	bootstrap = args[0]
	return bootstrap
}

// ---------------------------------------------------------------- scenarios

// Scenario is one row of a program's table: its name (as in compat-tests/run's SCENARIOS) and its
// body, which gets a context bounded by the per-scenario timeout and the scenario name (for Obs).
// A body reports by returning (PASS) or panicking: with Skip (SKIP), with a version refusal as
// Program.Refusal classifies it (SKIP with OBS refused=...), with anything else (FAIL).
type Scenario struct {
	Name string
	Run  func(ctx context.Context, name string)
}

// Plain is the Scenario of a body that takes no context.
func Plain(name string, f func(name string)) Scenario {
	return Scenario{Name: name, Run: func(_ context.Context, s string) { f(s) }}
}

// Skip, panicked by a scenario, reports `SKIP name: reason`.
type Skip string

func (s Skip) Error() string { return string(s) }

// Program describes a client program to Run.
type Program struct {
	Client    string     // the column name, in topic and group names: compat-<Client>-<label>-<run id>
	Header    string     // the "# ..." line (library versions)
	Scenarios []Scenario // in column order; COMPAT_SCENARIOS selects a subset
	// Preflight (required) is one bounded metadata round trip; when it fails (or takes over 15s),
	// every selected scenario FAILs at once.
	Preflight func() error
	// Refusal, if set, tells whether an error is the broker refusing the request version the
	// client sent, and how ("UNSUPPORTED_VERSION", "closed"): such a scenario is a SKIP.
	Refusal func(err error) (string, bool)
	// RefusalNote is appended to the reason of a refusal SKIP.
	RefusalNote string
	// Grace: how much longer than the per-scenario timeout (its context's deadline) the scenario is
	// awaited before it FAILs as timed out.
	Grace time.Duration
	// RedactFailures replaces the run id by <id> in FAIL reasons too (not only in OBS values).
	RedactFailures bool
	// AfterAll runs after the last scenario, before the summary line.
	AfterAll func()
}

var (
	mu      sync.Mutex // one line at a time on stdout; guards done, passed, failed
	done    = map[string]bool{}
	passed  int
	failed  int
	program Program
)

// Run prints the header and SCENARIOS lines, runs the preflight, then each selected scenario under
// COMPAT_SCENARIO_TIMEOUT (default 40s) and the whole program under the COMPAT_DEADLINE watchdog
// (default 240s), prints the summary and exits: 1 if a scenario FAILed, else 0.
func Run(p Program) {
	program = p
	var sel []Scenario
	var names []string
	only := os.Getenv("COMPAT_SCENARIOS")
	for _, x := range p.Scenarios {
		if only == "" || strings.Contains(","+only+",", ","+x.Name+",") {
			sel = append(sel, x)
			names = append(names, x.Name)
		}
	}
	Out(p.Header)
	Out("SCENARIOS " + strings.Join(names, " "))
	time.AfterFunc(envSeconds("COMPAT_DEADLINE", 240), func() {
		for _, x := range sel {
			fail(x.Name, "watchdog: program deadline reached")
		}
		finish()
	})
	per := envSeconds("COMPAT_SCENARIO_TIMEOUT", 40)

	pre := make(chan error, 1)
	go func() { pre <- p.Preflight() }()
	var perr error
	select {
	case perr = <-pre:
	case <-time.After(15 * time.Second):
		perr = fmt.Errorf("timeout")
	}
	if perr != nil {
		for _, x := range sel {
			fail(x.Name, fmt.Sprintf("preflight against %s failed (broker down?): %v", bootstrap, perr))
		}
		finish()
	}

	for _, x := range sel {
		ctx, cancel := context.WithTimeout(context.Background(), per)
		res := make(chan error, 1)
		go func(x Scenario) {
			defer func() {
				if r := recover(); r != nil {
					if e, ok := r.(error); ok {
						res <- e
					} else {
						res <- fmt.Errorf("%v", r)
					}
				}
			}()
			x.Run(ctx, x.Name)
			res <- nil
		}(x)
		select {
		case err := <-res:
			var sk Skip
			if errors.As(err, &sk) {
				result(x.Name, "SKIP "+x.Name+": "+string(sk), 0)
			} else if what, ok := refused(err); ok {
				Obs(x.Name, "refused", what)
				result(x.Name, "SKIP "+x.Name+": refused by the broker: "+Clean(err)+p.RefusalNote, 0)
			} else if err != nil {
				fail(x.Name, err)
			} else {
				result(x.Name, "PASS "+x.Name, 1)
			}
		case <-time.After(per + p.Grace):
			fail(x.Name, fmt.Sprintf("timed out after %ds", int(per/time.Second)))
		}
		cancel()
	}
	if p.AfterAll != nil {
		p.AfterAll()
	}
	finish()
}

// bootstrap is recorded by Bootstrap for the preflight message.
var bootstrap string

func envSeconds(k string, def int) time.Duration {
	if v := os.Getenv(k); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return time.Duration(def) * time.Second
}

func refused(err error) (string, bool) {
	if err == nil || program.Refusal == nil {
		return "", false
	}
	return program.Refusal(err)
}

// NoRefusal re-raises err when Program.Refusal calls it a version refusal, so that a scenario
// which expects an error reports a refusal as one (SKIP) rather than checking it.
func NoRefusal(err error, what string) {
	if _, ok := refused(err); ok {
		panic(fmt.Errorf("%s: %w", what, err))
	}
}

// ConnClosed tells whether err is the connection close Kafka does for a request version it does
// not serve (EOF, reset, broken pipe; also when the client only kept the text).
func ConnClosed(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		return true
	}
	s := err.Error()
	for _, m := range []string{"EOF", "connection reset by peer", "broken pipe"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- output

// Out prints one line.
func Out(line string) { mu.Lock(); fmt.Println(line); mu.Unlock() }

// Obs prints `OBS scenario key=value`: the run id replaced by <id>, spaces and newlines by _.
func Obs(s, k string, v interface{}) {
	val := strings.ReplaceAll(strings.ReplaceAll(fmt.Sprint(v), RunID, "<id>"), " ", "_")
	Out(fmt.Sprintf("OBS %s %s=%s", s, k, strings.ReplaceAll(val, "\n", "_")))
}

// Clean is a reason on one line (whitespace runs become one space), at most 400 bytes.
func Clean(reason interface{}) string {
	r := strings.Join(strings.Fields(fmt.Sprint(reason)), " ")
	if len(r) > 400 {
		r = r[:400]
	}
	return r
}

// result prints a scenario's line once (a later result of the same scenario, e.g. from the
// watchdog, is dropped); ok > 0 counts a pass, ok < 0 a failure.
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
	r := fmt.Sprint(reason)
	if program.RedactFailures {
		r = strings.ReplaceAll(r, RunID, "<id>")
	}
	result(name, "FAIL "+name+": "+Clean(r), -1)
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

// ---------------------------------------------------------------- scenario helpers

// Check FAILs the scenario with the formatted reason unless cond holds.
func Check(cond bool, format string, a ...interface{}) {
	if !cond {
		panic(fmt.Errorf(format, a...))
	}
}

// Must FAILs the scenario with "what: err" when err is not nil (err stays in the chain).
func Must(err error, what string) {
	if err != nil {
		panic(fmt.Errorf("%s: %w", what, err))
	}
}

// Name is a topic or group name: compat-<client>-<label>-<run id>, with - for _.
func Name(label string) string {
	return strings.ReplaceAll(fmt.Sprintf("compat-%s-%s-%s", program.Client, label, RunID), "_", "-")
}

// Payload is the value of record i of a produce_<codec> scenario.
func Payload(codec string, i int) []byte {
	return []byte(fmt.Sprintf("value-%d-%s-", i, codec) + strings.Repeat("abcdefgh", 40))
}

// JoinInts is 1,2,3.
func JoinInts(xs []int64) string {
	var s []string
	for _, x := range xs {
		s = append(s, strconv.FormatInt(x, 10))
	}
	return strings.Join(s, ",")
}

// Seq is a,a+1,...,b-1.
func Seq(a, b int) string {
	var s []string
	for i := a; i < b; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return strings.Join(s, ",")
}

// Eventually polls cond every 200ms for up to d; whether it held.
func Eventually(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

var (
	stateMu sync.Mutex
	state   = map[string]string{}
)

// SetState and GetState pass names between scenarios (group_consume's group to commit, ...).
func SetState(k, v string) { stateMu.Lock(); state[k] = v; stateMu.Unlock() }

// GetState: "" when not set.
func GetState(k string) string {
	stateMu.Lock()
	defer stateMu.Unlock()
	return state[k]
}

// ModuleVersion is the version of module path in the program's build info ("unknown" without).
func ModuleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}
