package main

import (
	"crypto/tls"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://service@127.0.0.1:5432/sensorhub?sslmode=prefer"; cfg.databaseURL != want {
		t.Errorf("database URL = %q, want %q", cfg.databaseURL, want)
	}
	if cfg.redis.Addr != "127.0.0.1:6379" || cfg.apiAddr != "0.0.0.0:5005" {
		t.Errorf("redis %q api %q", cfg.redis.Addr, cfg.apiAddr)
	}
	if cfg.stream != "sensor_stream" || cfg.channel != "sensor_stream" || cfg.group != "sensorhub" || !cfg.bridge {
		t.Errorf("stream %q channel %q group %q bridge %v", cfg.stream, cfg.channel, cfg.group, cfg.bridge)
	}
	if cfg.decoder.Location != time.UTC || cfg.decoder.DefaultStation != "default" || cfg.decoder.MaxMessageBytes != 64<<10 {
		t.Errorf("decoder = %+v", cfg.decoder)
	}
}

func TestLoadConfigSeedVariables(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(envOf(map[string]string{
		"DB_HOST": "postgres-prod", "DB_PORT": "6543", "DB_USER": "u", "DB_PASSWORD": "p@ss word", "DB_NAME": "n",
		"REDIS_HOST": "redis-prod", "REDIS_PORT": "7000", "API_HOST": "127.0.0.1", "API_PORT": "8080",
		"SENSORHUB_TIMEZONE": "Europe/Berlin",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://u:p%40ss%20word@postgres-prod:6543/n?sslmode=prefer"; cfg.databaseURL != want {
		t.Errorf("database URL = %q, want %q", cfg.databaseURL, want)
	}
	if cfg.redis.Addr != "redis-prod:7000" || cfg.apiAddr != "127.0.0.1:8080" || cfg.decoder.Location.String() != "Europe/Berlin" {
		t.Errorf("redis %q api %q zone %v", cfg.redis.Addr, cfg.apiAddr, cfg.decoder.Location)
	}
}

func TestLoadConfigSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(envOf(map[string]string{"DB_PASSWORD_FILE": file, "REDIS_PASSWORD_FILE": file}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg.databaseURL, ":from-file@") || cfg.redis.Password != "from-file" {
		t.Errorf("secret files not read: %q, %q", cfg.databaseURL, cfg.redis.Password)
	}
}

func TestLoadConfigNamesEveryBadVariableAndNoSecret(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-secret"
	_, err := loadConfig(envOf(map[string]string{
		"DB_PORT":                     "five",
		"REDIS_PORT":                  "70000",
		"API_PORT":                    "-1",
		"REDIS_DB":                    "x",
		"DB_SSLMODE":                  "sometimes",
		"DB_PASSWORD":                 secret,
		"DB_PASSWORD_FILE":            "/nonexistent",
		"REDIS_URL":                   "http://user:" + secret + "@host",
		"DATABASE_URL":                "postgres://u:" + secret + "@host:notaport/db",
		"SENSORHUB_TIMEZONE":          "Mars/Olympus",
		"SENSORHUB_MAX_MESSAGE_BYTES": "0",
		"SENSORHUB_MAX_FUTURE":        "soon",
		"SENSORHUB_BRIDGE":            "perhaps",
		"SENSORHUB_LOG_LEVEL":         "loud",
		"SENSORHUB_LOG_FORMAT":        "xml",
		"SENSORHUB_STREAM":            "bad stream",
		"SENSORHUB_MIN_TIME":          "yesterday",
		"SENSORHUB_DEFAULT_STATION":   "no spaces",
		"SENSORHUB_STATION_REFRESH":   "0s",
		"SENSORHUB_DERIVED":           "sometimes",
		"SENSORHUB_DERIVED_TOLERANCE": "-1m",
	}))
	if err == nil {
		t.Fatal("loadConfig accepted bad variables")
	}
	msg := err.Error()
	for _, name := range []string{"DB_PORT", "REDIS_PORT", "API_PORT", "REDIS_DB", "DB_SSLMODE", "DB_PASSWORD",
		"REDIS_URL", "DATABASE_URL", "SENSORHUB_TIMEZONE", "SENSORHUB_MAX_MESSAGE_BYTES", "SENSORHUB_MAX_FUTURE", "SENSORHUB_BRIDGE",
		"SENSORHUB_LOG_LEVEL", "SENSORHUB_LOG_FORMAT", "SENSORHUB_STREAM", "SENSORHUB_MIN_TIME", "SENSORHUB_DEFAULT_STATION",
		"SENSORHUB_STATION_REFRESH", "SENSORHUB_DERIVED", "SENSORHUB_DERIVED_TOLERANCE"} {
		if !strings.Contains(msg, name+":") {
			t.Errorf("error does not name %s:\n%s", name, msg)
		}
	}
	if strings.Contains(msg, secret) {
		t.Errorf("error echoes a secret:\n%s", msg)
	}
}

func TestLoadConfigRejectsBadDatabaseURLWithoutEchoingIt(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(envOf(map[string]string{"DATABASE_URL": "postgres://u:topsecret@host:notaport/db"}))
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadConfigRedisTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tests := []struct {
		name           string
		vars           map[string]string
		wantServerName string
		wantRoots      bool // a CA pool of our own, not the system's
		wantClientCert bool
		wantSkipVerify bool
	}{
		{name: "REDIS_TLS alone verifies against system roots", vars: map[string]string{"REDIS_TLS": "true"}, wantServerName: "127.0.0.1"},
		{
			name: "CA file, client pair and host name",
			vars: map[string]string{"REDIS_TLS": "1", "REDIS_HOST": "redis-prod", "REDIS_CA_FILE": pki.caFile,
				"REDIS_CERT_FILE": pki.clientCert, "REDIS_KEY_FILE": pki.clientKey},
			wantServerName: "redis-prod", wantRoots: true, wantClientCert: true,
		},
		{name: "server name override", vars: map[string]string{"REDIS_TLS": "true", "REDIS_HOST": "10.0.0.5", "REDIS_TLS_SERVER_NAME": "redis.lan"}, wantServerName: "redis.lan"},
		{name: "rediss URL implies TLS", vars: map[string]string{"REDIS_URL": "rediss://u:p@redis.lan:6380/1", "REDIS_CA_FILE": pki.caFile}, wantServerName: "redis.lan", wantRoots: true},
		{name: "rediss URL with REDIS_TLS true", vars: map[string]string{"REDIS_URL": "rediss://redis.lan:6380", "REDIS_TLS": "true"}, wantServerName: "redis.lan"},
		{name: "redis URL with REDIS_TLS", vars: map[string]string{"REDIS_URL": "redis://redis.lan:6380", "REDIS_TLS": "true"}, wantServerName: "redis.lan"},
		{name: "rediss URL keeps skip_verify", vars: map[string]string{"REDIS_URL": "rediss://redis.lan:6380?skip_verify=true"}, wantServerName: "redis.lan", wantSkipVerify: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(envOf(tt.vars))
			if err != nil {
				t.Fatal(err)
			}
			tc := cfg.redis.TLSConfig
			if tc == nil {
				t.Fatal("no TLS configuration")
			}
			if tc.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion = %x, want TLS 1.2", tc.MinVersion)
			}
			if tc.ServerName != tt.wantServerName {
				t.Errorf("ServerName = %q, want %q", tc.ServerName, tt.wantServerName)
			}
			if (tc.RootCAs != nil) != tt.wantRoots {
				t.Errorf("RootCAs set = %v, want %v", tc.RootCAs != nil, tt.wantRoots)
			}
			if (len(tc.Certificates) == 1) != tt.wantClientCert {
				t.Errorf("%d client certificates, want one: %v", len(tc.Certificates), tt.wantClientCert)
			}
			if tc.InsecureSkipVerify != tt.wantSkipVerify {
				t.Errorf("InsecureSkipVerify = %v", tc.InsecureSkipVerify)
			}
		})
	}

	t.Run("off by default", func(t *testing.T) {
		t.Parallel()
		for _, v := range []map[string]string{nil, {"REDIS_TLS": "false"}, {"REDIS_URL": "redis://redis.lan:6380"}} {
			cfg, err := loadConfig(envOf(v))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.redis.TLSConfig != nil {
				t.Errorf("%v: TLS on", v)
			}
		}
	})
}

func TestLoadConfigPostgresTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tests := []struct {
		name      string
		vars      map[string]string
		wantQuery url.Values
		// what pgx makes of the URL
		wantRoots      bool
		wantClientCert bool
	}{
		{name: "verify-full with a CA file", vars: map[string]string{"DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": pki.caFile},
			wantQuery: url.Values{"sslmode": {"verify-full"}, "sslrootcert": {pki.caFile}}, wantRoots: true},
		{name: "verify-ca with a CA file", vars: map[string]string{"DB_SSLMODE": "verify-ca", "DB_SSLROOTCERT": pki.caFile},
			wantQuery: url.Values{"sslmode": {"verify-ca"}, "sslrootcert": {pki.caFile}}, wantRoots: true},
		{name: "require with a CA file", vars: map[string]string{"DB_SSLMODE": "require", "DB_SSLROOTCERT": pki.caFile},
			wantQuery: url.Values{"sslmode": {"require"}, "sslrootcert": {pki.caFile}}, wantRoots: true},
		{name: "system roots imply verify-full", vars: map[string]string{"DB_SSLROOTCERT": "system"},
			wantQuery: url.Values{"sslmode": {"verify-full"}, "sslrootcert": {"system"}}, wantRoots: true},
		{name: "system roots with verify-full", vars: map[string]string{"DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": "system"},
			wantQuery: url.Values{"sslmode": {"verify-full"}, "sslrootcert": {"system"}}, wantRoots: true},
		{
			name:      "client certificate",
			vars:      map[string]string{"DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": pki.caFile, "DB_SSLCERT": pki.clientCert, "DB_SSLKEY": pki.clientKey},
			wantQuery: url.Values{"sslmode": {"verify-full"}, "sslrootcert": {pki.caFile}, "sslcert": {pki.clientCert}, "sslkey": {pki.clientKey}},
			wantRoots: true, wantClientCert: true,
		},
		{name: "client certificate with require", vars: map[string]string{"DB_SSLMODE": "require", "DB_SSLCERT": pki.clientCert, "DB_SSLKEY": pki.clientKey},
			wantQuery: url.Values{"sslmode": {"require"}, "sslcert": {pki.clientCert}, "sslkey": {pki.clientKey}}, wantClientCert: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.vars["DB_HOST"] = "postgres-prod"
			cfg, err := loadConfig(envOf(tt.vars))
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(cfg.databaseURL)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Query(); !maps.EqualFunc(got, tt.wantQuery, slices.Equal) {
				t.Errorf("query = %v, want %v", got, tt.wantQuery)
			}
			pc, err := pgx.ParseConfig(cfg.databaseURL)
			if err != nil {
				t.Fatal(err)
			}
			tc := pc.TLSConfig
			if tc == nil {
				t.Fatal("pgx: no TLS")
			}
			if (tc.RootCAs != nil) != tt.wantRoots || (len(tc.Certificates) == 1) != tt.wantClientCert {
				t.Errorf("pgx: RootCAs %v, %d client certificates", tc.RootCAs != nil, len(tc.Certificates))
			}
			if tt.wantQuery.Get("sslmode") == "verify-full" && (tc.InsecureSkipVerify || tc.ServerName != "postgres-prod") {
				t.Errorf("pgx: verify-full does not check the host name: skip %v, name %q", tc.InsecureSkipVerify, tc.ServerName)
			}
		})
	}

	t.Run("DB_SSL files are DB_* variables", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(envOf(map[string]string{"DATABASE_URL": "postgres://h/db", "DB_SSLROOTCERT": pki.caFile, "DB_SSLCERT": pki.clientCert}))
		if err == nil || !strings.Contains(err.Error(), "DB_SSLROOTCERT: is ignored when DATABASE_URL") || !strings.Contains(err.Error(), "DB_SSLCERT: is ignored") {
			t.Fatalf("err = %v", err)
		}
	})
}
