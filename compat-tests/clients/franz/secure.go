package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	compat "sluice.dev/compat/goharness"
)

// secure: the broker's secure listeners as compat-tests/run gives them in COMPAT_SECURE
// ("sasl_ssl=HOST:PORT;ssl=HOST:PORT;ca=PEM;client=PEM;user=U;password=P"); empty without.
func secure() map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(os.Getenv("COMPAT_SECURE"), ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func tlsConfig(caFile string) *tls.Config {
	pem, err := os.ReadFile(caFile)
	compat.Must(err, "read the CA")
	pool := x509.NewCertPool()
	compat.Check(pool.AppendCertsFromPEM(pem), "no certificate in %s", caFile)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// scramClient: a client of the SASL_SSL listener authenticating with SCRAM-SHA-512 or -256.
func scramClient(sec map[string]string, sha512 bool, user, password string, opts ...kgo.Opt) *kgo.Client {
	auth := scram.Auth{User: user, Pass: password}
	mech := auth.AsSha256Mechanism()
	if sha512 {
		mech = auth.AsSha512Mechanism()
	}
	o := append(baseOpts(sec["sasl_ssl"]), kgo.DialTLSConfig(tlsConfig(sec["ca"])), kgo.SASL(mech))
	cl, err := kgo.NewClient(append(o, opts...)...)
	compat.Must(err, "kgo.NewClient (SASL_SSL)")
	return cl
}

// sScramSaslSsl: produce and read back over SASL_SSL with SCRAM-SHA-512; SCRAM-SHA-256 logs in
// too; a wrong password does not.
func sScramSaslSsl(ctx context.Context, s string) {
	sec := secure()
	if sec["sasl_ssl"] == "" {
		panic(compat.Skip("no SASL_SSL listener given (COMPAT_SECURE)"))
	}
	t := compat.Name(s)
	ensureTopic(ctx, t, 1, nil)
	p := scramClient(sec, true, sec["user"], sec["password"], kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	offs := produce(ctx, p, []*kgo.Record{kv(0, 0, t), kv(1, 0, t), kv(2, 0, t)})
	p.Close()
	compat.Obs(s, "offsets", compat.JoinInts(offs))
	c := scramClient(sec, true, sec["user"], sec["password"],
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: {0: kgo.NewOffset().At(0)}}))
	defer c.Close()
	var got []string
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for len(got) < 3 && wait.Err() == nil {
		fs := c.PollRecords(wait, 3-len(got))
		for _, r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	compat.Obs(s, "read", strings.Join(got, ","))
	compat.Check(strings.Join(got, ",") == "v0,v1,v2", "read back over SASL_SSL SCRAM-SHA-512: %v", got)
	ping := func(sha512 bool, user, password string) string {
		cl := scramClient(sec, sha512, user, password)
		defer cl.Close()
		pc, cancel := context.WithTimeout(ctx, 8*time.Second)
		defer cancel()
		err := cl.Ping(pc)
		var ke *kerr.Error
		switch {
		case err == nil:
			return "ok"
		case errors.As(err, &ke):
			return ke.Message
		case errors.Is(err, context.DeadlineExceeded):
			return "timeout"
		}
		return "error"
	}
	sha256 := ping(false, sec["user"], sec["password"])
	compat.Obs(s, "scram_sha_256", sha256)
	compat.Check(sha256 == "ok", "SCRAM-SHA-256 login: %s", sha256)
	wrong := ping(true, sec["user"], "not-"+sec["password"])
	compat.Obs(s, "wrong_password", wrong)
	compat.Check(wrong == "SASL_AUTHENTICATION_FAILED", "a wrong password ended as %s", wrong)
}
