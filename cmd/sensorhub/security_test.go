package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/internal/docacl"
	"github.com/sensorhub/sensorhub/internal/syncbuf"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

// testPKI is a certificate authority made for one test, with a server
// certificate for 127.0.0.1 and localhost and a client certificate, all as
// PEM files in a temporary directory.
type testPKI struct {
	caFile                string // CA certificate
	serverCert, serverKey string
	clientCert, clientKey string
	pool                  *x509.CertPool // holds the CA
}

// newTestPKI generates a CA and its certificates: ECDSA P-256, valid for an
// hour.
func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := func() *big.Int {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	write := func(name, blockType string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "PRIVATE KEY", der)
	}
	notBefore := time.Now().Add(-time.Minute)
	notAfter := notBefore.Add(time.Hour)

	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "sensorhub test CA " + t.Name()},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, usage x509.ExtKeyUsage, withSANs bool) (certFile, keyFile string) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    notBefore,
			NotAfter:     notAfter,
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if withSANs {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), writeKey(name+"-key.pem", k)
	}
	p := &testPKI{caFile: write("ca.pem", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.serverCert, p.serverKey = issue("server", x509.ExtKeyUsageServerAuth, true)
	p.clientCert, p.clientKey = issue("client", x509.ExtKeyUsageClientAuth, false)
	return p
}

// tlsRedis is a throwaway redis-server that speaks only TLS, with the
// default user disabled and one ACL user.
type tlsRedis struct {
	pki            *testPKI
	host, port     string
	user, password string
}

// startTLSRedis starts redis-server on a free port with TLS only and the
// ACL user sensor, which may do anything, and kills it when the test ends.
// authClients is Redis's tls-auth-clients: "no", "optional" or "yes";
// extraACL are more aclfile lines. The test fails when redis-server is
// missing or cannot start, and is skipped under -short.
func startTLSRedis(t *testing.T, authClients string, extraACL ...string) *tlsRedis {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server; skipped under -short")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server (7.0 or later, built with TLS) is needed for the TLS tests: %v", err)
	}
	r := &tlsRedis{pki: newTestPKI(t), host: "127.0.0.1", user: "sensor", password: "sensor-pw-" + randomHex(t)}
	dir := t.TempDir()
	aclFile := filepath.Join(dir, "users.acl")
	acl := strings.Join(append([]string{"user default off", "user " + r.user + " on >" + r.password + " ~* &* +@all"}, extraACL...), "\n") + "\n"
	if err := os.WriteFile(aclFile, []byte(acl), 0o600); err != nil {
		t.Fatal(err)
	}

	// The free port may be taken between finding and binding it: try again.
	var logs *syncbuf.Buffer
	for attempt := 1; ; attempt++ {
		_, r.port, _ = net.SplitHostPort(freeAddr(t))
		logs = &syncbuf.Buffer{}
		cmd := exec.Command(bin,
			"--port", "0", // no plaintext listener
			"--tls-port", r.port,
			"--bind", r.host,
			"--tls-cert-file", r.pki.serverCert,
			"--tls-key-file", r.pki.serverKey,
			"--tls-ca-cert-file", r.pki.caFile,
			"--tls-auth-clients", authClients,
			"--aclfile", aclFile,
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
		)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("redis-server output:\n%s", logs.String())
			}
		})
		err := r.waitReady(exited)
		if err == nil {
			return r
		}
		if attempt < 3 && strings.Contains(logs.String(), "Address already in use") {
			continue
		}
		t.Fatalf("redis-server with TLS on %s did not come up: %v", r.port, err) // the cleanup logs its output
	}
}

// waitReady pings the server as the ACL user until it answers, it exits,
// or 10 s pass.
func (r *tlsRedis) waitReady(exited <-chan struct{}) error {
	c := r.client(r.user, r.password)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited")
		default:
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client connects over TLS, trusting the test CA and presenting the test
// client certificate, independently of loadConfig.
func (r *tlsRedis) client(user, password string) *goredis.Client {
	cfg := &tls.Config{RootCAs: r.pki.pool, ServerName: r.host, MinVersion: tls.VersionTLS12}
	if pair, err := tls.LoadX509KeyPair(r.pki.clientCert, r.pki.clientKey); err == nil {
		cfg.Certificates = []tls.Certificate{pair}
	}
	return goredis.NewClient(&goredis.Options{
		Addr:      net.JoinHostPort(r.host, r.port),
		Username:  user,
		Password:  password,
		TLSConfig: cfg,
	})
}

// vars are the variables that connect sensorhub to r over TLS as the ACL
// user.
func (r *tlsRedis) vars() map[string]string {
	return map[string]string{
		"REDIS_HOST":     r.host,
		"REDIS_PORT":     r.port,
		"REDIS_TLS":      "true",
		"REDIS_CA_FILE":  r.pki.caFile,
		"REDIS_USERNAME": r.user,
		"REDIS_PASSWORD": r.password,
	}
}

// serve points the binary of e at r instead of the shared Redis.
func (r *tlsRedis) serve(e *testEnv) {
	delete(e.vars, "REDIS_URL")
	maps.Copy(e.vars, r.vars())
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// publishTo runs sensorhub publish in process with vars and returns its exit
// code and output.
func publishTo(t *testing.T, vars map[string]string, payload string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(t.Context(), []string{"publish", payload}, envOf(vars), &out, &out)
	return code, out.String()
}

// mergeVars returns one map of all sets, later ones winning.
func mergeVars(sets ...map[string]string) map[string]string {
	m := map[string]string{}
	for _, x := range sets {
		for k, v := range x {
			m[k] = v
		}
	}
	return m
}

func TestRedisTLSAndACLPublish(t *testing.T) {
	t.Parallel()
	r := startTLSRedis(t, "no")
	reader := r.client(r.user, r.password)
	t.Cleanup(func() { _ = reader.Close() })

	tests := []struct {
		name string
		vars map[string]string
	}{
		{name: "REDIS_TLS with REDIS_CA_FILE", vars: r.vars()},
		{name: "rediss URL with REDIS_CA_FILE", vars: map[string]string{
			"REDIS_URL":     "rediss://" + r.user + ":" + r.password + "@" + net.JoinHostPort(r.host, r.port) + "/0",
			"REDIS_CA_FILE": r.pki.caFile,
		}},
		{name: "server name localhost verified against the DNS SAN", vars: mergeVars(r.vars(), map[string]string{"REDIS_TLS_SERVER_NAME": "localhost"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stream := "tls_" + randomHex(t)
			tt.vars["SENSORHUB_STREAM"] = stream
			code, out := publishTo(t, tt.vars, legacyReading)
			if code != 0 || !strings.Contains(out, "appended to stream "+stream) {
				t.Fatalf("publish over TLS = %d\n%s", code, out)
			}
			msgs, err := reader.XRange(t.Context(), stream, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 || msgs[0].Values["payload"] != legacyReading {
				t.Fatalf("stream %s holds %v, want the published reading", stream, msgs)
			}
			if strings.Contains(out, r.password) {
				t.Errorf("output echoes the password:\n%s", out)
			}
		})
	}
}

func TestRedisTLSRefusesWhatItShould(t *testing.T) {
	t.Parallel()
	r := startTLSRedis(t, "no")
	otherCA := newTestPKI(t)
	const wrongPassword = "wrong-pw-6d1e0c"

	tests := []struct {
		name     string
		vars     map[string]string
		wantCode int
		want     []string // in the output
		secrets  []string // never in the output
	}{
		{
			name:     "wrong CA fails certificate verification",
			vars:     mergeVars(r.vars(), map[string]string{"REDIS_CA_FILE": otherCA.caFile}),
			wantCode: exitFailure,
			want:     []string{"failed to verify certificate", "unknown authority"},
			secrets:  []string{r.password},
		},
		{
			name:     "system roots do not know the test CA",
			vars:     mergeVars(r.vars(), map[string]string{"REDIS_CA_FILE": ""}),
			wantCode: exitFailure,
			want:     []string{"failed to verify certificate"},
			secrets:  []string{r.password},
		},
		{
			name:     "server name not in the certificate",
			vars:     mergeVars(r.vars(), map[string]string{"REDIS_TLS_SERVER_NAME": "redis.example.org"}),
			wantCode: exitFailure,
			want:     []string{"failed to verify certificate", "redis.example.org"},
			secrets:  []string{r.password},
		},
		{
			name:     "wrong password",
			vars:     mergeVars(r.vars(), map[string]string{"REDIS_PASSWORD": wrongPassword}),
			wantCode: exitFailure,
			want:     []string{"WRONGPASS"},
			secrets:  []string{wrongPassword, r.password},
		},
		{
			name:     "default user is off",
			vars:     mergeVars(r.vars(), map[string]string{"REDIS_USERNAME": "", "REDIS_PASSWORD": wrongPassword}),
			wantCode: exitFailure,
			want:     []string{"WRONGPASS"},
			secrets:  []string{wrongPassword},
		},
		{
			name:     "plaintext to the TLS port",
			vars:     mergeVars(r.vars(), map[string]string{"REDIS_TLS": "", "REDIS_CA_FILE": ""}),
			wantCode: exitFailure,
			secrets:  []string{r.password},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.vars["SENSORHUB_STREAM"] = "tls_" + randomHex(t)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			code := run(ctx, []string{"publish", legacyReading}, envOf(tt.vars), &out, &out)
			if code != tt.wantCode {
				t.Fatalf("publish = %d, want %d\n%s", code, tt.wantCode, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output does not mention %q:\n%s", w, out.String())
				}
			}
			for _, s := range tt.secrets {
				if strings.Contains(out.String(), s) {
					t.Errorf("output echoes a password:\n%s", out.String())
				}
			}
		})
	}
}

func TestRedisMutualTLS(t *testing.T) {
	t.Parallel()
	r := startTLSRedis(t, "yes")
	withCert := mergeVars(r.vars(), map[string]string{"REDIS_CERT_FILE": r.pki.clientCert, "REDIS_KEY_FILE": r.pki.clientKey})

	withCert["SENSORHUB_STREAM"] = "mtls_" + randomHex(t)
	if code, out := publishTo(t, withCert, legacyReading); code != 0 {
		t.Fatalf("publish with a client certificate = %d\n%s", code, out)
	}

	without := r.vars()
	without["SENSORHUB_STREAM"] = "mtls_" + randomHex(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if code := run(ctx, []string{"publish", legacyReading}, envOf(without), &out, &out); code == 0 {
		t.Fatalf("publish without a client certificate succeeded against tls-auth-clients yes:\n%s", out.String())
	}

	// A certificate from another CA is refused as well.
	other := newTestPKI(t)
	foreign := mergeVars(withCert, map[string]string{"REDIS_CERT_FILE": other.clientCert, "REDIS_KEY_FILE": other.clientKey})
	out.Reset()
	if code := run(ctx, []string{"publish", legacyReading}, envOf(foreign), &out, &out); code == 0 {
		t.Fatalf("publish with a foreign client certificate succeeded:\n%s", out.String())
	}
}

func TestTLSConfigErrorsNameEveryVariable(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const password = "config-pw-93b2aa"
	tests := []struct {
		name string
		vars map[string]string
		want []string // each must be named as "NAME:"
	}{
		{
			name: "missing files and half a key pair",
			vars: map[string]string{
				"REDIS_TLS":       "true",
				"REDIS_CA_FILE":   "/nonexistent/ca.pem",
				"REDIS_CERT_FILE": pki.clientCert,
				"REDIS_PASSWORD":  password,
				"DB_SSLMODE":      "verify-full",
				"DB_SSLROOTCERT":  "/nonexistent/root.crt",
				"DB_PASSWORD":     password,
			},
			want: []string{"REDIS_CA_FILE", "REDIS_CERT_FILE", "DB_SSLROOTCERT"},
		},
		{
			name: "unparseable files and mismatched pairs",
			vars: map[string]string{
				"REDIS_TLS":       "true",
				"REDIS_CA_FILE":   garbage,
				"REDIS_CERT_FILE": pki.clientCert,
				"REDIS_KEY_FILE":  pki.serverKey, // the wrong key
				"DB_SSLMODE":      "verify-ca",
				"DB_SSLROOTCERT":  garbage,
				"DB_SSLKEY":       pki.clientKey,
			},
			want: []string{"REDIS_CA_FILE", "REDIS_CERT_FILE", "DB_SSLROOTCERT", "DB_SSLKEY"},
		},
		{
			name: "TLS settings that would be ignored",
			vars: map[string]string{
				"REDIS_CA_FILE":         pki.caFile,
				"REDIS_TLS_SERVER_NAME": "redis.lan",
				"DB_SSLMODE":            "disable",
				"DB_SSLCERT":            pki.clientCert,
				"DB_SSLKEY":             pki.clientKey,
			},
			want: []string{"REDIS_CA_FILE", "REDIS_TLS_SERVER_NAME", "DB_SSLCERT"},
		},
		{
			name: "verification without a root and contradictions",
			vars: map[string]string{
				"REDIS_URL":  "rediss://127.0.0.1:6380/0",
				"REDIS_TLS":  "false",
				"DB_SSLMODE": "verify-full",
			},
			want: []string{"REDIS_TLS", "DB_SSLROOTCERT"},
		},
		{
			name: "system roots with a weaker mode",
			vars: map[string]string{"DB_SSLMODE": "require", "DB_SSLROOTCERT": "system", "REDIS_TLS": "maybe"},
			want: []string{"DB_SSLROOTCERT", "REDIS_TLS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			code := run(t.Context(), []string{"publish", legacyReading}, envOf(tt.vars), &out, &out)
			if code != exitUsage {
				t.Fatalf("exit code %d, want %d\n%s", code, exitUsage, out.String())
			}
			msg := out.String()
			if n := strings.Count(msg, "invalid configuration"); n != 1 {
				t.Errorf("%d configuration errors, want one naming every variable:\n%s", n, msg)
			}
			for _, name := range tt.want {
				if !strings.Contains(msg, "\n"+name+":") {
					t.Errorf("error does not name %s:\n%s", name, msg)
				}
			}
			if strings.Contains(msg, password) || strings.Contains(msg, "PRIVATE KEY") {
				t.Errorf("error echoes a secret:\n%s", msg)
			}
		})
	}
}

// TestServiceOverTLSRedis runs the service over TLS as the least-privilege
// ACL user the docs give: stream and Pub/Sub commands on its own keys and
// channel only. Readings come from the docs' producer user, which may only
// append and publish. Every path must work with these rights: storing,
// poisoning (by the hub and, for an oversized entry, by the subscriber),
// listing and replaying the poison queue, forwarding events, and an events
// consumer reading them.
func TestServiceOverTLSRedis(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	password, producerPassword := "least-pw-"+randomHex(t), "producer-pw-"+randomHex(t)
	// docs/security.md: the ACL lines, with the test's names.
	events := e.vars["SENSORHUB_EVENTS_STREAM"]
	aclLine := func(user, password string) string {
		rules, err := docacl.Rules(user, e.stream, events)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("user %s on >%s %s", user, password, strings.Join(rules, " "))
	}
	acl, producerACL := aclLine("sensorhub", password), aclLine("sensors", producerPassword)
	r := startTLSRedis(t, "no", acl, producerACL)
	r.serve(e)
	e.vars["REDIS_USERNAME"], e.vars["REDIS_PASSWORD"] = "sensorhub", password
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		admin := r.client(r.user, r.password)
		defer admin.Close()
		denied, _ := admin.Do(context.Background(), "ACL", "LOG").Result()
		t.Logf("ACL LOG: %v", denied)
	})
	p := e.start(t, "run")
	e.waitHealthy(t)
	producer := func(args ...string) (int, string) {
		var out bytes.Buffer
		vars := mergeVars(e.vars, map[string]string{"REDIS_USERNAME": "sensors", "REDIS_PASSWORD": producerPassword})
		return run(t.Context(), args, envOf(vars), &out, &out), out.String()
	}

	// The durable path: XADD over TLS.
	if code, out := producer("publish", legacyReading); code != 0 {
		t.Fatalf("publish = %d\n%s", code, out)
	}
	poll.Until(t, 5*time.Second, "the reading sent over TLS is stored", func() bool {
		return e.rows(t, "WHERE sensor = 'temperature' AND value = 14") == 1
	})
	// The legacy path: PUBLISH over TLS, bridged by the service's
	// subscription over TLS.
	humidity := `{"sensor":"humidity","value":55,"timestamp":"2024-12-01T12:00:00Z","station":"roof"}`
	if code, out := producer("publish", "--channel", humidity); code != 0 {
		t.Fatalf("publish --channel = %d\n%s", code, out)
	}
	poll.Until(t, 5*time.Second, "the reading bridged over TLS is stored", func() bool {
		return e.rows(t, "WHERE sensor = 'humidity' AND station = 'roof'") == 1
	})
	// The poison queue and the metrics' XINFO/XPENDING work with these rights.
	if code, out := producer("publish", `{"sensor":"temperature","value":999,"timestamp":"2024-12-01T12:00:00Z"}`); code != 0 {
		t.Fatalf("publish = %d\n%s", code, out)
	}
	// The producer can neither read the stream nor touch other keys.
	if code, out := producer("poison", "list"); code == 0 || !strings.Contains(out, "NOPERM") {
		t.Errorf("poison list as the producer = %d, want NOPERM\n%s", code, out)
	}
	poll.Until(t, 5*time.Second, "the out-of-range reading is poisoned", func() bool {
		code, out := e.cli(t, "poison", "list")
		return code == 0 && strings.Contains(out, "value_out_of_range")
	})
	// An entry over the message limit: the subscriber poisons it itself.
	admin := r.client(r.user, r.password)
	defer admin.Close()
	if err := admin.XAdd(t.Context(), &goredis.XAddArgs{Stream: e.stream, Values: []any{"payload", strings.Repeat("x", 70<<10)}}).Err(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the oversized entry is poisoned", func() bool {
		code, out := e.cli(t, "poison", "list")
		return code == 0 && strings.Contains(out, sensorhub.ReasonTooLarge)
	})
	if code, out := e.cli(t, "poison", "replay"); code != 0 || !strings.Contains(out, "replayed 2 message(s)") {
		t.Errorf("poison replay = %d, want both entries replayed\n%s", code, out)
	}
	// The readings stored above were forwarded as events, which a
	// consumer with the same rights reads.
	poll.Until(t, 5*time.Second, "a readings.stored event is forwarded", func() bool {
		return slices.ContainsFunc(redistest.Events(t, admin, events), func(ev sensorhub.Event) bool { return ev.Type == sensorhub.EventReadingsStored })
	})
	as := r.client("sensorhub", password)
	defer as.Close()
	consumer, err := redis.New(redis.Config{Options: as.Options(), Stream: events, Group: "alerts", Consumer: "alerts", BlockTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	received, err := consumer.Subscriber().Subscribe(t.Context(), events)
	if err != nil {
		t.Fatalf("subscribe to the events stream as the sensorhub user: %v", err)
	}
	select {
	case m := <-received:
		m.Ack()
	case <-time.After(10 * time.Second):
		t.Error("the events consumer received nothing within 10s")
	}
	if code, body := getRaw("http://" + e.api + "/metrics"); code != http.StatusOK || !strings.Contains(body, "sensorhub_") {
		t.Errorf("GET /metrics = %d", code)
	} else if strings.Contains(body, "sensorhub_redis_errors_total") {
		t.Errorf("Redis refused commands of the service:\n%s", body)
	}
	e.waitHealthy(t)
	if _, status := e.component("redis_commands"); status != "ok" {
		t.Errorf("component redis_commands is %q, want ok", status)
	}
	if strings.Contains(p.logs.String(), password) {
		t.Errorf("logs hold the Redis password:\n%s", p.logs.String())
	}
	// Everything went to the throwaway Redis, nothing to the shared one.
	if n := e.redis.Exists(t.Context(), e.stream).Val(); n != 0 {
		t.Errorf("the stream exists on the shared Redis too")
	}
}

// TestHealthcheckAndLogsLeakNoSecret gives the service known passwords that
// fail, and checks that neither they nor the DSN show up in what it serves
// or logs.
func TestHealthcheckAndLogsLeakNoSecret(t *testing.T) {
	t.Parallel()
	const dbPassword = "db-Secret-5e7a21"
	// PostgreSQL on a closed port: the pool connects lazily, so the service
	// starts and reports postgres down.
	dsn := "postgres://sensorhub_app:" + dbPassword + "@127.0.0.1:1/sensorhub?sslmode=disable&connect_timeout=1"

	// A Redis password wrong from the start stops start-up: the consumer
	// group cannot be created. Only the logs can leak then.
	t.Run("wrong Redis password at start", func(t *testing.T) {
		t.Parallel()
		const redisPassword = "redis-Secret-a09f44"
		r := startTLSRedis(t, "no")
		e := newTestEnv(t)
		r.serve(e)
		e.vars["DATABASE_URL"] = dsn
		e.vars["REDIS_PASSWORD"] = redisPassword
		e.vars["SENSORHUB_LOG_LEVEL"] = "debug"
		p := e.start(t, "run")
		if code := p.wait(t, 30*time.Second); code == 0 {
			t.Fatalf("the service ran with a wrong Redis password:\n%s", p.logs.String())
		}
		logs := p.logs.String()
		if !strings.Contains(logs, "WRONGPASS") {
			t.Errorf("the logs do not say why start-up failed:\n%s", logs)
		}
		assertNoSecret(t, "the logs", logs, dsn, dbPassword, redisPassword)
	})

	// A Redis password that turns wrong while the service runs (rotated in
	// Redis, connections dropped) shows in /healthcheck.
	t.Run("Redis password rotated away while running", func(t *testing.T) {
		t.Parallel()
		r := startTLSRedis(t, "no")
		e := newTestEnv(t)
		r.serve(e)
		e.vars["DATABASE_URL"] = dsn
		e.vars["SENSORHUB_LOG_LEVEL"] = "debug"
		redisPassword := r.password // known to the service, wrong after the rotation
		p := e.start(t, "run")

		var body string
		poll.Until(t, 20*time.Second, "GET /healthcheck reports postgres down", func() bool {
			code, b := getRaw("http://" + e.api + "/healthcheck")
			body = b
			return code == http.StatusServiceUnavailable && strings.Contains(b, `"postgres":{"status":"down"`)
		})
		assertNoSecret(t, "GET /healthcheck", body, dsn, dbPassword, redisPassword)

		admin := r.client(r.user, r.password)
		defer admin.Close()
		if err := admin.Do(t.Context(), "ACL", "SETUSER", r.user, "resetpass", ">rotated-"+randomHex(t)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := admin.Do(t.Context(), "CLIENT", "KILL", "USER", r.user).Err(); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 20*time.Second, "GET /healthcheck reports redis down", func() bool {
			code, b := getRaw("http://" + e.api + "/healthcheck")
			body = b
			return code == http.StatusServiceUnavailable && strings.Contains(b, `"redis":{"status":"down"`)
		})
		t.Logf("/healthcheck: %s", body)
		for _, path := range []string{"/healthcheck", "/readyz", "/livez", "/metrics"} {
			_, b := getRaw("http://" + e.api + path)
			assertNoSecret(t, "GET "+path, b, dsn, dbPassword, redisPassword)
		}
		assertNoSecret(t, "the logs", p.logs.String(), dsn, dbPassword, redisPassword)
	})
}

// getRaw returns the status code and body of GET url; 0 when it fails.
func getRaw(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

func assertNoSecret(t *testing.T, what, text, dsn string, passwords ...string) {
	t.Helper()
	for _, s := range append([]string{dsn, "postgres://", "postgresql://"}, passwords...) {
		if strings.Contains(text, s) {
			t.Errorf("%s hold %q:\n%s", what, s, text)
		}
	}
}
