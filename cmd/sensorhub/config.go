package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sinks/postgres/stations"
)

// config is the service's configuration, read from the environment only.
// The variable names are a contract (DESIGN.md §6): add, never rename.
type config struct {
	databaseURL string
	redis       *goredis.Options
	// redisCluster, set with REDIS_CLUSTER=true, replaces redis for every
	// client (rediscluster.go).
	redisCluster *goredis.ClusterOptions
	apiAddr      string

	stream, channel, group, consumer string
	bridge                           bool
	decoder                          sensorhub.DecoderConfig
	stationRefresh                   time.Duration
	handlerTimeout, shutdownTimeout  time.Duration
	claimIdle                        time.Duration

	logLevel  slog.Level
	logFormat string

	outbox     outboxConfig
	processing processingConfig
	staleness  stalenessConfig
	derived    derivedConfig
	api        apiConfig
	rollups    rollupConfig
	// rawRetention is how long raw readings are kept (partitions older are
	// dropped, rollups older are not recomputed); 0 keeps them forever.
	rawRetention time.Duration
	faults       faultHooks
}

// env reads variables and collects one error per bad variable, so that
// start-up names every wrong variable at once.
type env struct {
	getenv func(string) string
	errs   []error
}

func (e *env) fail(name, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
}

func (e *env) str(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

// secret reads name or the file named by name_FILE; setting both is an
// error. The value is never echoed in an error.
func (e *env) secret(name string) string {
	v, file := e.getenv(name), e.getenv(name+"_FILE")
	switch {
	case file == "":
		return v
	case v != "":
		e.fail(name, "set both %s and %s_FILE; set one", name, name)
		return ""
	}
	b, err := os.ReadFile(file)
	if err != nil {
		e.fail(name+"_FILE", "%v", err)
		return ""
	}
	return strings.TrimRight(string(b), "\r\n")
}

// retention reads a retention period: whole days such as 400d, or a Go
// duration such as 9600h; empty or 0 means forever (0 returned).
func (e *env) retention(name string) time.Duration {
	v := e.getenv(name)
	if v == "" || v == "0" {
		return 0
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100*366 {
			e.fail(name, "%q is not a number of days such as 400d", v)
			return 0
		}
		return time.Duration(n) * 24 * time.Hour
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.fail(name, "%q is neither a number of days such as 400d nor a duration such as 9600h (0 keeps readings forever)", v)
		return 0
	}
	return d
}

// exclusive fails for every variable of parts that is set along with the
// variable whole (or whole_FILE), which would silently override it.
func (e *env) exclusive(whole string, parts ...string) {
	if e.getenv(whole) == "" && e.getenv(whole+"_FILE") == "" {
		return
	}
	for _, p := range parts {
		if e.getenv(p) != "" {
			e.fail(p, "is ignored when %s is set; set one or the other", whole)
		}
	}
}

func (e *env) port(name string, def int) int {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		e.fail(name, "%q is not a port number (0-65535)", v)
	}
	return n
}

func (e *env) positive(name string, def int) int {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		e.fail(name, "%q is not a positive whole number", v)
	}
	return n
}

func (e *env) duration(name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.fail(name, "%q is not a positive duration such as 30s or 5m", v)
	}
	return d
}

func (e *env) boolean(name string, def bool) bool {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(name, "%q is not true or false", v)
	}
	return b
}

func (e *env) oneOf(name, def string, allowed ...string) string {
	v := e.str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	e.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return def
}

// namePattern is what stream, channel, group and consumer names may hold;
// the braces are for Redis Cluster hash tags, as in {sensor}stream.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9{][A-Za-z0-9_.:{}-]{0,127}$`)

func (e *env) name(name, def string) string {
	v := e.str(name, def)
	if !namePattern.MatchString(v) {
		e.fail(name, "%q does not match %s", v, namePattern)
	}
	return v
}

// postgresTLS returns the TLS parameters of the PostgreSQL URL built from
// DB_*: sslmode, and sslrootcert, sslcert and sslkey when set. Files are
// read here so that a missing or broken one is reported by the variable
// that names it, not as a failure to connect.
//
// DB_SSLMODE verify-ca and verify-full need DB_SSLROOTCERT: a CA file, or
// "system" for the system's roots. Without it libpq fails and pgx silently
// uses the system's roots; a private CA, the common case for a database on
// the LAN, would then fail only at connect time. "system" implies
// verify-full, as in libpq, because system roots vouch for host names, not
// for a private chain.
func (e *env) postgresTLS() url.Values {
	modes := []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
	mode := e.oneOf("DB_SSLMODE", "prefer", modes...)
	modeSet := e.getenv("DB_SSLMODE") != ""
	// A bad DB_SSLMODE is reported already; judging the files against the
	// default in its place would only add confusing errors.
	modeOK := !modeSet || slices.Contains(modes, e.getenv("DB_SSLMODE"))
	q := url.Values{}

	switch root := e.str("DB_SSLROOTCERT", ""); {
	case root == "system":
		if !modeSet {
			mode = "verify-full"
		} else if modeOK && mode != "verify-full" {
			e.fail("DB_SSLROOTCERT", `"system" needs DB_SSLMODE=verify-full (or DB_SSLMODE unset), not %s`, mode)
		}
		q.Set("sslrootcert", root)
	case root != "":
		e.certPool("DB_SSLROOTCERT")
		if modeOK && (mode == "disable" || mode == "allow" || mode == "prefer") {
			e.fail("DB_SSLROOTCERT", "has no effect with DB_SSLMODE=%s, which does not verify the server; use verify-full", mode)
		}
		q.Set("sslrootcert", root)
	case mode == "verify-ca" || mode == "verify-full":
		e.fail("DB_SSLROOTCERT", `is required with DB_SSLMODE=%s: the CA file that signed the server's certificate, or "system" for the system's roots`, mode)
	}

	if _, ok := e.keyPair("DB_SSLCERT", "DB_SSLKEY"); ok {
		if mode == "disable" {
			e.fail("DB_SSLCERT", "has no effect with DB_SSLMODE=disable")
		}
		q.Set("sslcert", e.getenv("DB_SSLCERT"))
		q.Set("sslkey", e.getenv("DB_SSLKEY"))
	}
	q.Set("sslmode", mode)
	return q
}

// redisTLS sets opts.TLSConfig when REDIS_TLS is true or REDIS_URL is
// rediss://, and fails for TLS variables set while TLS is off, which would
// otherwise be ignored. The server is verified against REDIS_CA_FILE, or
// the system's roots, under the name REDIS_TLS_SERVER_NAME, or the host
// connected to. opts is nil when REDIS_URL is invalid, which is reported
// already; then only the files are checked, and only when REDIS_TLS is true.
func (e *env) redisTLS(opts *goredis.Options) {
	fromURL := opts != nil && opts.TLSConfig != nil
	on := e.boolean("REDIS_TLS", fromURL)
	if fromURL && !on {
		e.fail("REDIS_TLS", "is false, but REDIS_URL is rediss://; unset one")
	}
	if !on {
		if opts == nil { // REDIS_URL is invalid and reported; it may have meant rediss://
			return
		}
		for _, name := range []string{"REDIS_CA_FILE", "REDIS_TLS_SERVER_NAME", "REDIS_CERT_FILE", "REDIS_KEY_FILE"} {
			if e.getenv(name) != "" {
				e.fail(name, "has no effect unless REDIS_TLS=true or REDIS_URL is rediss://")
			}
		}
		return
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if name := e.getenv("REDIS_TLS_SERVER_NAME"); name != "" {
		cfg.ServerName = name
	}
	if e.getenv("REDIS_CA_FILE") != "" {
		cfg.RootCAs = e.certPool("REDIS_CA_FILE")
	}
	if pair, ok := e.keyPair("REDIS_CERT_FILE", "REDIS_KEY_FILE"); ok {
		cfg.Certificates = []tls.Certificate{pair}
	}
	if opts == nil {
		return
	}
	if fromURL {
		// Keep what the URL chose: its host as server name, and skip_verify.
		if cfg.ServerName == "" {
			cfg.ServerName = opts.TLSConfig.ServerName
		}
		cfg.InsecureSkipVerify = opts.TLSConfig.InsecureSkipVerify
	} else if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(opts.Addr)
	}
	opts.TLSConfig = cfg
}

// certPool reads the PEM CA bundle named by the variable name.
func (e *env) certPool(name string) *x509.CertPool {
	path := e.getenv(name)
	b, err := os.ReadFile(path)
	if err != nil {
		e.fail(name, "cannot read the CA file: %v", err)
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		e.fail(name, "%s holds no PEM certificate", path)
		return nil
	}
	return pool
}

// keyPair reads the client certificate and key named by certName and
// keyName, which are set both or neither. ok is false when neither is set
// or the pair is bad. Errors name the files, never their contents.
func (e *env) keyPair(certName, keyName string) (pair tls.Certificate, ok bool) {
	certFile, keyFile := e.getenv(certName), e.getenv(keyName)
	switch {
	case certFile == "" && keyFile == "":
		return tls.Certificate{}, false
	case keyFile == "":
		e.fail(certName, "is set without %s; set both or neither", keyName)
		return tls.Certificate{}, false
	case certFile == "":
		e.fail(keyName, "is set without %s; set both or neither", certName)
		return tls.Certificate{}, false
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		e.fail(certName, "cannot read the certificate: %v", err)
	}
	keyPEM, kerr := os.ReadFile(keyFile)
	if kerr != nil {
		e.fail(keyName, "cannot read the key: %v", kerr)
	}
	if err != nil || kerr != nil {
		return tls.Certificate{}, false
	}
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		e.fail(certName, "with %s: %v (an unencrypted PEM key matching the certificate is needed)", keyName, err)
		return tls.Certificate{}, false
	}
	return pair, true
}

// loadConfig reads the configuration from getenv.
func loadConfig(getenv func(string) string) (config, error) {
	e := &env{getenv: getenv}
	var c config

	e.exclusive("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_PASSWORD_FILE", "DB_NAME", "DB_SSLMODE",
		"DB_SSLROOTCERT", "DB_SSLCERT", "DB_SSLKEY")
	e.exclusive("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_PASSWORD_FILE", "REDIS_DB")

	c.databaseURL = e.secret("DATABASE_URL")
	if c.databaseURL == "" {
		user := url.User(e.str("DB_USER", "service"))
		if pw := e.secret("DB_PASSWORD"); pw != "" {
			user = url.UserPassword(user.Username(), pw)
		}
		u := url.URL{
			Scheme: "postgres",
			User:   user,
			Host:   net.JoinHostPort(e.str("DB_HOST", "127.0.0.1"), strconv.Itoa(e.port("DB_PORT", 5432))),
			Path:   "/" + e.str("DB_NAME", "sensorhub"),
		}
		u.RawQuery = e.postgresTLS().Encode()
		c.databaseURL = u.String()
	}

	if _, err := pgx.ParseConfig(c.databaseURL); err != nil {
		switch {
		case getenv("DATABASE_URL") != "" || getenv("DATABASE_URL_FILE") != "":
			e.fail("DATABASE_URL", "not a valid PostgreSQL URL or key=value DSN (value not shown)")
		case len(e.errs) == 0: // else an error above already names the bad DB_* variable
			e.fail("DB_HOST", "DB_* do not form a valid connection string")
		}
	}

	cluster := e.boolean("REDIS_CLUSTER", false)
	redisURL := e.secret("REDIS_URL")
	if redisURL != "" {
		opts, err := goredis.ParseURL(redisURL)
		if cluster {
			opts, err = clusterSeed(redisURL)
		}
		if err != nil {
			e.fail("REDIS_URL", "not a valid redis:// or rediss:// URL (value not shown)")
		}
		c.redis = opts
	} else {
		c.redis = &goredis.Options{
			Addr:     net.JoinHostPort(e.str("REDIS_HOST", "127.0.0.1"), strconv.Itoa(e.port("REDIS_PORT", 6379))),
			Username: e.str("REDIS_USERNAME", ""),
			Password: e.secret("REDIS_PASSWORD"),
		}
		if v := getenv("REDIS_DB"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				e.fail("REDIS_DB", "%q is not a database number (0 or more)", v)
			}
			c.redis.DB = n
		}
	}
	e.redisTLS(c.redis)

	c.apiAddr = net.JoinHostPort(e.str("API_HOST", "0.0.0.0"), strconv.Itoa(e.port("API_PORT", 5005)))

	c.stream = e.name("SENSORHUB_STREAM", sensorhub.DefaultStream)
	c.channel = e.name("SENSORHUB_CHANNEL", redis.DefaultChannel)
	c.group = e.name("SENSORHUB_GROUP", redis.DefaultGroup)
	c.consumer = e.str("SENSORHUB_CONSUMER", "")
	if c.consumer != "" && !namePattern.MatchString(c.consumer) {
		e.fail("SENSORHUB_CONSUMER", "%q does not match %s", c.consumer, namePattern)
	}
	c.bridge = e.boolean("SENSORHUB_BRIDGE", true)
	c.handlerTimeout = e.duration("SENSORHUB_HANDLER_TIMEOUT", sensorhub.DefaultHandlerTimeout)
	c.shutdownTimeout = e.duration("SENSORHUB_SHUTDOWN_TIMEOUT", sensorhub.DefaultCloseTimeout)
	c.claimIdle = e.duration("SENSORHUB_CLAIM_IDLE", redis.DefaultMaxIdleTime)

	c.decoder.MaxMessageBytes = e.positive("SENSORHUB_MAX_MESSAGE_BYTES", sensorhub.DefaultMaxMessageBytes)
	c.decoder.MaxFuture = e.duration("SENSORHUB_MAX_FUTURE", sensorhub.DefaultMaxFuture)
	c.decoder.DefaultStation = e.str("SENSORHUB_DEFAULT_STATION", sensorhub.DefaultStation)
	if tz := e.str("SENSORHUB_TIMEZONE", "UTC"); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			e.fail("SENSORHUB_TIMEZONE", "%q is not an IANA time zone such as Europe/Berlin", tz)
		}
		c.decoder.Location = loc
	}
	if cluster {
		e.redisCluster(&c, redisURL)
	}
	c.stationRefresh = e.duration("SENSORHUB_STATION_REFRESH", stations.DefaultRefresh)
	if v := getenv("SENSORHUB_MIN_TIME"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t, err = time.Parse(time.DateOnly, v)
		}
		if err != nil {
			e.fail("SENSORHUB_MIN_TIME", "%q is neither RFC 3339 nor YYYY-MM-DD", v)
		}
		c.decoder.MinTime = t
	}
	if err := c.decoder.Validate(); err != nil {
		e.fail("SENSORHUB_DEFAULT_STATION", "%v", err)
	}

	switch lvl := e.oneOf("SENSORHUB_LOG_LEVEL", "info", "debug", "info", "warn", "error"); lvl {
	case "debug":
		c.logLevel = slog.LevelDebug
	case "warn":
		c.logLevel = slog.LevelWarn
	case "error":
		c.logLevel = slog.LevelError
	default:
		c.logLevel = slog.LevelInfo
	}
	c.logFormat = e.oneOf("SENSORHUB_LOG_FORMAT", "text", "text", "json")

	c.outbox = loadOutboxConfig(e)
	c.processing = loadProcessingConfig(e)
	c.staleness = loadStalenessConfig(e)
	c.derived = loadDerivedConfig(e)
	c.api = loadAPIConfig(e)
	c.rollups = loadRollupConfig(e)
	c.rawRetention = e.retention("SENSORHUB_RAW_RETENTION")
	c.faults = loadFaultHooks(e)

	if err := errors.Join(e.errs...); err != nil {
		return config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}
