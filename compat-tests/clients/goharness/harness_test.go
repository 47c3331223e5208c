package goharness

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestLines(t *testing.T) {
	if got := Clean("a\n\tb   c " + strings.Repeat("x", 500)); len(got) != 400 || !strings.HasPrefix(got, "a b c x") {
		t.Errorf("Clean: %q", got)
	}
	program = Program{Client: "kafka-go"}
	if got, want := Name("group_restart"), "compat-kafka-go-group-restart-"+RunID; got != want {
		t.Errorf("Name: %q, want %q", got, want)
	}
	if got := Seq(4, 10); got != "4,5,6,7,8,9" {
		t.Errorf("Seq: %q", got)
	}
	if got := JoinInts([]int64{-1, 0, 12}); got != "-1,0,12" {
		t.Errorf("JoinInts: %q", got)
	}
	if got := ErrorName(36) + " " + ErrorName(0) + " " + ErrorName(-1) + " " + ErrorName(91); got != "TOPIC_ALREADY_EXISTS NONE UNKNOWN_SERVER_ERROR ERROR_91" {
		t.Errorf("ErrorName: %q", got)
	}
	if got := ConfigSourceName(1) + " " + ConfigSourceName(5) + " " + ConfigSourceName(9); got != "DYNAMIC_TOPIC_CONFIG DEFAULT_CONFIG " {
		t.Errorf("ConfigSourceName: %q", got)
	}
}

func TestObs(t *testing.T) {
	r, w, _ := os.Pipe()
	stdout := os.Stdout
	os.Stdout = w
	Obs("commit", "committed", "compat-x-"+RunID+" a\nb")
	os.Stdout = stdout
	w.Close()
	b, _ := io.ReadAll(r)
	if got := string(b); got != "OBS commit committed=compat-x-<id>_a_b\n" {
		t.Errorf("Obs printed %q", got)
	}
}

func TestErrors(t *testing.T) {
	var sk Skip
	if !errors.As(fmt.Errorf("x: %w", Skip("why")), &sk) || sk != "why" {
		t.Errorf("Skip through a wrapper: %q", sk)
	}
	for _, err := range []error{io.EOF, fmt.Errorf("read: %w", syscall.ECONNRESET), errors.New("write tcp: broken pipe")} {
		if !ConnClosed(err) {
			t.Errorf("ConnClosed(%v) = false", err)
		}
	}
	if ConnClosed(nil) || ConnClosed(errors.New("UNKNOWN_TOPIC_OR_PARTITION")) {
		t.Error("ConnClosed of nil or a Kafka error")
	}
}
