package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	}))
	if err == nil {
		t.Fatal("loadConfig accepted bad variables")
	}
	msg := err.Error()
	for _, name := range []string{"DB_PORT", "REDIS_PORT", "API_PORT", "REDIS_DB", "DB_SSLMODE", "DB_PASSWORD",
		"REDIS_URL", "DATABASE_URL", "SENSORHUB_TIMEZONE", "SENSORHUB_MAX_MESSAGE_BYTES", "SENSORHUB_MAX_FUTURE", "SENSORHUB_BRIDGE",
		"SENSORHUB_LOG_LEVEL", "SENSORHUB_LOG_FORMAT", "SENSORHUB_STREAM", "SENSORHUB_MIN_TIME", "SENSORHUB_DEFAULT_STATION"} {
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
