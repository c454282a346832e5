package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The deployment files, relative to the repository root. No Docker engine
// runs where the tests run, so TestDeploy checks them by parsing: the
// contract of issue 6, DESIGN.md §6-§8 and the old README's production
// layout (deploy/README.md).
const (
	dockerfilePath   = "Dockerfile"
	dockerignorePath = ".dockerignore"
	devComposePath   = "docker-compose.yaml"
	prodComposePath  = "docker-compose.prod.yml"
	pgComposePath    = "deploy/postgres/docker-compose.yml"
	redisComposePath = "deploy/redis/docker-compose.yml"
	// replicasComposePath is the example of N replicas (docs/scaling.md).
	replicasComposePath = "docker-compose.replicas.yml"
	makefilePath        = "Makefile"
	goModPath           = "go.mod"
	deployREADMEPath    = "deploy/README.md"
	rolesSQLPath        = "deploy/postgres/roles.sql"
)

// Contract values that users and operators rely on.
const (
	apiPort         = 5005  // DESIGN.md §6 API_PORT, the old service's port
	devPostgresPort = 54321 // docker-compose.yaml, the old README's psql -p 54321
	devRedisPort    = 63791 // docker-compose.yaml, the old README's redis-cli -p 63791
	imageUID        = "65532"
	prodNetwork     = "sensorhub"          // the old layout's external network
	prodPGVolume    = "postgres-data-prod" // the old layout's PostgreSQL volume
	prodPGName      = "postgres-prod"      // the old layout's DB_HOST
	prodRedisName   = "redis-prod"         // the old layout's REDIS_HOST
)

var (
	composePaths     = []string{devComposePath, prodComposePath, pgComposePath, redisComposePath, replicasComposePath}
	prodComposePaths = []string{prodComposePath, pgComposePath, redisComposePath}
	makeTargets      = []string{"run", "test", "test-short", "bench", "migrate", "lint", "docker-build", "dev-up", "dev-down", "help"}
)

// TestDeploy checks the Dockerfile, the compose files, the Makefile and
// deploy/ against the contract and against the code: the commands main.go's
// usage lists, the variables loadConfig reads, go.mod's Go version.
func TestDeploy(t *testing.T) {
	t.Parallel()
	d := loadDeployFiles(t)

	t.Run("DockerfileGoVersion", func(t *testing.T) {
		t.Parallel()
		stages := d.dockerfile(t)
		// The image builds with the toolchain go.mod names: the security
		// floor, which the go line (the language version importers need)
		// does not fix.
		m := regexp.MustCompile(`(?m)^toolchain\s+go(\S+)\s*$`).FindStringSubmatch(d.text(t, goModPath))
		if m == nil {
			t.Fatalf("%s: no toolchain line", goModPath)
		}
		found := false
		for _, s := range stages {
			repo, tag, _ := strings.Cut(s.image, ":")
			if repo != "golang" && repo != "docker.io/library/golang" {
				continue
			}
			found = true
			if version, _, _ := strings.Cut(tag, "-"); version != m[1] {
				t.Errorf("%s:%d: build image %s has Go %q; go.mod's toolchain line says go%s", dockerfilePath, s.from.line, s.image, version, m[1])
			}
		}
		if !found {
			t.Errorf("%s: no stage FROM golang:<go.mod's toolchain version>", dockerfilePath)
		}
	})

	t.Run("DockerfileStaticBuild", func(t *testing.T) {
		t.Parallel()
		// -X main.version=... sets a string variable; after a rename, or as
		// a constant, the image would silently report "dev". This fails to
		// compile instead.
		var _ *string = &version
		var build *instruction
		for _, s := range d.dockerfile(t) {
			for i, in := range s.instrs {
				if in.cmd == "RUN" && strings.Contains(in.args, "go build") && strings.Contains(in.args, "./cmd/sensorhub") {
					build = &s.instrs[i]
				}
			}
		}
		if build == nil {
			t.Fatalf("%s: no RUN go build ... ./cmd/sensorhub", dockerfilePath)
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}"} {
			if !strings.Contains(build.args, want) {
				t.Errorf("%s:%d: the build does not use %s", dockerfilePath, build.line, want)
			}
		}
	})

	t.Run("DockerfileFinalImage", func(t *testing.T) {
		t.Parallel()
		stages := d.dockerfile(t)
		final := stages[len(stages)-1]
		if !strings.HasPrefix(final.image, "gcr.io/distroless/static") || !strings.HasSuffix(final.image, ":nonroot") {
			t.Errorf("%s:%d: final image %s is not distroless static :nonroot", dockerfilePath, final.from.line, final.image)
		}
		user := final.last("USER")
		if user == nil {
			t.Fatalf("%s: the final stage sets no USER: it would run as root", dockerfilePath)
		}
		uid, gid, _ := strings.Cut(user.args, ":")
		if uid != imageUID || (gid != "" && gid != imageUID) {
			t.Errorf("%s:%d: USER %s; want the numeric non-root %s:%s", dockerfilePath, user.line, user.args, imageUID, imageUID)
		}
		var exposed []string
		for _, in := range final.all("EXPOSE") {
			exposed = append(exposed, strings.Fields(in.args)...)
		}
		if def := d.defaults(t).apiPort; def != strconv.Itoa(apiPort) {
			t.Errorf("loadConfig's default API_PORT is %s; the contract (DESIGN.md §6) says %d", def, apiPort)
		}
		if !slices.Contains(exposed, strconv.Itoa(apiPort)) && !slices.Contains(exposed, strconv.Itoa(apiPort)+"/tcp") {
			t.Errorf("%s: the final stage EXPOSEs %v, not %d", dockerfilePath, exposed, apiPort)
		}
		for _, in := range final.instrs {
			if in.cmd == "SHELL" || in.cmd == "RUN" {
				t.Errorf("%s:%d: %s in the final stage: distroless has no shell", dockerfilePath, in.line, in.cmd)
			}
		}
	})

	t.Run("DockerfileHealthcheckAndCmd", func(t *testing.T) {
		t.Parallel()
		stages := d.dockerfile(t)
		final := stages[len(stages)-1]
		commands := d.commands(t)

		entry := final.last("ENTRYPOINT")
		if entry == nil {
			t.Fatalf("%s: the final stage has no ENTRYPOINT", dockerfilePath)
		}
		entryArgv, ok := execForm(entry.args)
		if !ok || len(entryArgv) != 1 {
			t.Fatalf("%s:%d: ENTRYPOINT %s: want the exec form [\"/path/to/sensorhub\"] (distroless has no shell)", dockerfilePath, entry.line, entry.args)
		}
		binary := entryArgv[0]
		copied := false
		for _, in := range final.all("COPY") {
			if f := strings.Fields(in.args); len(f) > 0 && f[len(f)-1] == binary {
				copied = true
			}
		}
		if !copied {
			t.Errorf("%s:%d: ENTRYPOINT runs %s, which no COPY of the final stage puts there", dockerfilePath, entry.line, binary)
		}

		if cmd := final.last("CMD"); cmd == nil {
			t.Errorf("%s: the final stage has no CMD", dockerfilePath)
		} else if argv, ok := execForm(cmd.args); !ok {
			t.Errorf("%s:%d: CMD %s: want the exec form", dockerfilePath, cmd.line, cmd.args)
		} else if err := commands.check(argv); err != nil {
			t.Errorf("%s:%d: CMD %s: %v", dockerfilePath, cmd.line, cmd.args, err)
		}

		hc := final.last("HEALTHCHECK")
		if hc == nil {
			t.Fatalf("%s: the final stage has no HEALTHCHECK", dockerfilePath)
		}
		_, rest := cutFlags(hc.args)
		word, form, _ := strings.Cut(rest, " ")
		if !strings.EqualFold(word, "CMD") {
			t.Fatalf("%s:%d: HEALTHCHECK %s: want HEALTHCHECK [options] CMD [...]", dockerfilePath, hc.line, hc.args)
		}
		argv, ok := execForm(form)
		if !ok || len(argv) < 2 {
			t.Fatalf("%s:%d: HEALTHCHECK CMD %s: want the exec form [%q, \"healthcheck\"] (distroless has no shell)", dockerfilePath, hc.line, form, binary)
		}
		if argv[0] != binary {
			t.Errorf("%s:%d: HEALTHCHECK runs %s, ENTRYPOINT %s", dockerfilePath, hc.line, argv[0], binary)
		}
		if argv[1] != "healthcheck" {
			t.Errorf("%s:%d: HEALTHCHECK runs %q; want sensorhub's healthcheck command", dockerfilePath, hc.line, argv[1])
		}
		if err := commands.check(argv[1:]); err != nil {
			t.Errorf("%s:%d: HEALTHCHECK %s: %v", dockerfilePath, hc.line, form, err)
		}
	})

	t.Run("DockerfileNoSecrets", func(t *testing.T) {
		t.Parallel()
		for _, s := range d.dockerfile(t) {
			for _, in := range s.instrs {
				if in.cmd != "ENV" && in.cmd != "ARG" {
					continue
				}
				for _, name := range declaredNames(in) {
					if secretName.MatchString(name) || d.config(t).secrets[name] {
						t.Errorf("%s:%d: %s %s: a secret in ENV or ARG stays in the image's layers or history", dockerfilePath, in.line, in.cmd, name)
					}
				}
			}
		}
	})

	t.Run("Dockerignore", func(t *testing.T) {
		t.Parallel()
		ig := parseDockerignore(d.text(t, dockerignorePath))
		mustExclude := []string{".git", ".git/config", "bin", "bin/sensorhub", "cmd/sensorhub/sensorhub.test", "coverage.out", "secrets/db_password", ".env"}
		for _, secret := range d.composeSecretFiles(t) {
			if !slices.Contains(mustExclude, secret.path) {
				mustExclude = append(mustExclude, secret.path)
			}
		}
		for _, p := range mustExclude {
			if !ig.excluded(p) {
				t.Errorf("%s: does not exclude %s from the build context", dockerignorePath, p)
			}
		}
		for _, p := range d.buildInputs(t) {
			if ig.excluded(p) {
				t.Errorf("%s: excludes %s, a source file of the module or one it embeds: the build stage needs the whole module", dockerignorePath, p)
			}
		}
	})

	t.Run("Ports", func(t *testing.T) {
		t.Parallel()
		want := []struct {
			file, service string
			published     int
			target        string
		}{
			{devComposePath, "postgres", devPostgresPort, "5432"},
			{devComposePath, "redis", devRedisPort, "6379"},
			{devComposePath, "sensorhub", apiPort, ""},
			{prodComposePath, "sensorhub", apiPort, ""},
			{pgComposePath, "postgres", 5432, "5432"},      // the old layout's
			{redisComposePath, "redis-prod", 6379, "6379"}, // the old layout's
		}
		for _, w := range want {
			svc, ok := d.compose(t, w.file).service(w.service)
			if !ok {
				t.Errorf("%s: no service %s", w.file, w.service)
				continue
			}
			target := w.target
			if target == "" { // sensorhub: the port it listens on
				target = d.defaults(t).apiPort
				if v, ok := svc.envValue("API_PORT"); ok {
					target = v
				}
			}
			ports := svc.ports()
			found := slices.ContainsFunc(ports, func(p portMapping) bool {
				return p.published == strconv.Itoa(w.published) && p.target == target
			})
			if !found {
				t.Errorf("%s:%d: service %s publishes %v; want host port %d to container port %s", w.file, svc.line, w.service, ports, w.published, target)
			}
		}
	})

	t.Run("EnvKnownToConfig", func(t *testing.T) {
		t.Parallel()
		known := d.config(t).names
		for _, svc := range d.sensorhubServices(t) {
			if n := svc.get("env_file"); n != nil {
				t.Errorf("%s:%d: service %s uses env_file, which this test cannot check: list the variables under environment", svc.file, n.Line, svc.name)
			}
			for _, e := range svc.env() {
				if !known[e.name] {
					t.Errorf("%s:%d: service %s sets %s, which loadConfig never reads (a typo, or a variable the service lost)", svc.file, e.line, svc.name, e.name)
				}
			}
		}
	})

	t.Run("ConfigAcceptsComposeEnv", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		for _, svc := range d.sensorhubServices(t) {
			env := map[string]string{}
			for _, e := range svc.env() {
				if !e.set {
					continue
				}
				v := withDefaults(e.value)
				if base, ok := strings.CutSuffix(e.name, "_FILE"); ok && v != "" {
					// The file exists only in the container; give loadConfig one it can read.
					content := "secret"
					switch base {
					case "DATABASE_URL":
						content = "postgres://u:p@db:5432/sensorhub"
					case "REDIS_URL":
						content = "redis://redis:6379/0"
					}
					v = filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(svc.file+"_"+svc.name+"_"+e.name))
					if err := os.WriteFile(v, []byte(content+"\n"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				env[e.name] = v
			}
			if _, err := loadConfig(func(k string) string { return env[k] }); err != nil {
				t.Errorf("%s:%d: service %s: loadConfig rejects its environment (variables interpolated with their defaults):\n%v", svc.file, svc.line, svc.name, err)
			}
		}
	})

	t.Run("ComposeCommands", func(t *testing.T) {
		t.Parallel()
		commands := d.commands(t)
		for _, svc := range d.sensorhubServices(t) {
			if n := svc.get("entrypoint"); n != nil {
				t.Errorf("%s:%d: service %s overrides the image's ENTRYPOINT", svc.file, n.Line, svc.name)
			}
			argv, line := svc.command()
			if argv == nil {
				continue // the image's CMD, checked above
			}
			if err := commands.check(argv); err != nil {
				t.Errorf("%s:%d: service %s: command %q: %v", svc.file, line, svc.name, argv, err)
			}
		}
	})

	t.Run("MigrateOneShot", func(t *testing.T) {
		t.Parallel()
		for _, file := range []string{devComposePath, prodComposePath, replicasComposePath} {
			c := d.compose(t, file)
			migrate, ok1 := c.service("migrate")
			hub, ok2 := c.service("sensorhub")
			if !ok1 || !ok2 {
				t.Errorf("%s: want the services migrate and sensorhub", file)
				continue
			}
			if argv, line := migrate.command(); !slices.Equal(argv, []string{"migrate", "up"}) {
				t.Errorf("%s:%d: migrate runs %q; want [migrate up]", file, line, argv)
			}
			if r, line := migrate.scalar("restart"); r != "" && r != "no" {
				t.Errorf("%s:%d: migrate has restart: %s; a one-shot must not be restarted", file, line, r)
			}
			cond, line := hub.dependsOn("migrate")
			if cond != "service_completed_successfully" {
				t.Errorf("%s:%d: sensorhub depends on migrate with condition %q; want service_completed_successfully", file, line, cond)
			}
		}
	})

	t.Run("Replicas", func(t *testing.T) {
		t.Parallel()
		checkReplicasCompose(t, d)
	})

	t.Run("RedisDurability", func(t *testing.T) {
		t.Parallel()
		n := 0
		for _, file := range composePaths {
			for _, svc := range d.compose(t, file).services() {
				if image := withDefaults(svc.str("image")); !strings.HasPrefix(image, "redis:") && image != "redis" {
					continue
				}
				n++
				argv, line := svc.command()
				for _, opt := range [][2]string{{"--appendonly", "yes"}, {"--maxmemory-policy", "noeviction"}} {
					i := slices.Index(argv, opt[0])
					if i < 0 || i+1 >= len(argv) || argv[i+1] != opt[1] {
						t.Errorf("%s:%d: service %s runs %q without %s %s", file, line, svc.name, argv, opt[0], opt[1])
					}
				}
			}
		}
		if n < 2 {
			t.Errorf("found %d Redis services in %v; want the development and the production one", n, composePaths)
		}
	})

	t.Run("ProdHardening", func(t *testing.T) {
		t.Parallel()
		for _, file := range prodComposePaths {
			for _, svc := range d.compose(t, file).services() {
				oneShot := svc.name == "migrate"
				if r, line := svc.scalar("restart"); !oneShot && r != "unless-stopped" {
					t.Errorf("%s:%d: service %s has restart: %q; want unless-stopped", file, line, svc.name, r)
				}
				if !svc.isSensorhub() {
					continue
				}
				if v, line := svc.scalar("read_only"); v != "true" {
					t.Errorf("%s:%d: service %s: read_only is %q; want true", file, line, svc.name, v)
				}
				if list, line := svc.list("cap_drop"); !slices.Contains(list, "ALL") {
					t.Errorf("%s:%d: service %s: cap_drop %q; want [ALL]", file, line, svc.name, list)
				}
				list, line := svc.list("security_opt")
				if !slices.ContainsFunc(list, regexp.MustCompile(`^no-new-privileges(?:[:=]true)?$`).MatchString) {
					t.Errorf("%s:%d: service %s: security_opt %q; want no-new-privileges:true", file, line, svc.name, list)
				}
				if u, line := svc.scalar("user"); u != "" {
					if uid, _, _ := strings.Cut(u, ":"); uid == "0" || uid == "root" {
						t.Errorf("%s:%d: service %s runs as %s", file, line, svc.name, u)
					}
				}
			}
		}
	})

	t.Run("ProdLayout", func(t *testing.T) {
		t.Parallel()
		for _, file := range prodComposePaths {
			c := d.compose(t, file)
			if nw := c.top("networks", prodNetwork); nw == nil || scalarOf(mapGet(nw, "external")) != "true" {
				t.Errorf("%s: no top-level external network %s", file, prodNetwork)
			}
			for _, svc := range c.services() {
				if nets, line := svc.networks(); !slices.Contains(nets, prodNetwork) {
					t.Errorf("%s:%d: service %s is not on the network %s", file, line, svc.name, prodNetwork)
				}
			}
		}

		pg, ok := d.compose(t, pgComposePath).service("postgres")
		if !ok {
			t.Fatalf("%s: no service postgres", pgComposePath)
		}
		redis, ok := d.compose(t, redisComposePath).service("redis-prod")
		if !ok {
			t.Fatalf("%s: no service redis-prod", redisComposePath)
		}
		for _, c := range []struct {
			svc         service
			name, image string
		}{{pg, prodPGName, "postgres:16"}, {redis, prodRedisName, "redis:"}} {
			if n, line := c.svc.scalar("container_name"); n != c.name {
				t.Errorf("%s:%d: container_name %q; want %s (the old layout's, sensorhub's DB_HOST/REDIS_HOST)", c.svc.file, line, n, c.name)
			}
			if image := withDefaults(c.svc.str("image")); !strings.HasPrefix(image, c.image) {
				t.Errorf("%s:%d: image %s; want %s...", c.svc.file, c.svc.line, image, c.image)
			}
		}

		mounted := false
		for _, v := range pg.volumes() {
			if v.target != "/var/lib/postgresql/data" {
				continue
			}
			mounted = true
			def := d.compose(t, pgComposePath).top("volumes", v.source)
			if def == nil || scalarOf(mapGet(def, "external")) != "true" {
				t.Errorf("%s:%d: the data volume %s is not external: compose would create a new, empty one", pgComposePath, v.line, v.source)
				continue
			}
			name := v.source
			if n := scalarOf(mapGet(def, "name")); n != "" {
				name = withDefaults(n)
			}
			if name != prodPGVolume {
				t.Errorf("%s:%d: the data volume is %s by default; want %s (the old layout's)", pgComposePath, def.Line, name, prodPGVolume)
			}
		}
		if !mounted {
			t.Errorf("%s:%d: nothing mounted at /var/lib/postgresql/data", pgComposePath, pg.line)
		}

		defaults := d.defaults(t)
		pgUser, _ := pg.envValue("POSTGRES_USER")
		pgDB, _ := pg.envValue("POSTGRES_DB")
		if pgUser != defaults.dbUser {
			t.Errorf("%s:%d: POSTGRES_USER %q; want DB_USER's default %q", pgComposePath, pg.envLine("POSTGRES_USER"), pgUser, defaults.dbUser)
		}
		if pgDB != defaults.dbName {
			t.Errorf("%s:%d: POSTGRES_DB %q; want DB_NAME's default %q", pgComposePath, pg.envLine("POSTGRES_DB"), pgDB, defaults.dbName)
		}
		for _, svc := range d.sensorhubServices(t) {
			if svc.file != prodComposePath {
				continue
			}
			// What the service connects to, given its variables and the
			// config's defaults for those it leaves unset.
			got := map[string]string{"DB_HOST": "", "REDIS_HOST": "", "DB_USER": defaults.dbUser, "DB_NAME": defaults.dbName}
			for name := range got {
				if v, ok := svc.envValue(name); ok {
					got[name] = v
				}
			}
			for name, want := range map[string]string{"DB_HOST": prodPGName, "REDIS_HOST": prodRedisName, "DB_USER": pgUser, "DB_NAME": pgDB} {
				if got[name] != want {
					t.Errorf("%s:%d: service %s: %s is %q; want %q", svc.file, svc.envLine(name), svc.name, name, got[name], want)
				}
			}
			if svc.name == "sensorhub" {
				if got, _ := svc.envValue("API_HOST"); got != "0.0.0.0" {
					t.Errorf("%s:%d: service sensorhub: API_HOST is %q; want 0.0.0.0 (the old layout's)", svc.file, svc.envLine("API_HOST"), got)
				}
			}
		}
	})

	t.Run("DevWiring", func(t *testing.T) {
		t.Parallel()
		c := d.compose(t, devComposePath)
		pg, ok1 := c.service("postgres")
		redis, ok2 := c.service("redis")
		hub, ok3 := c.service("sensorhub")
		if !ok1 || !ok2 || !ok3 {
			t.Fatalf("%s: want the services postgres, redis and sensorhub", devComposePath)
		}
		defaults := d.defaults(t)
		pgUser, _ := pg.envValue("POSTGRES_USER")
		pgPassword, _ := pg.envValue("POSTGRES_PASSWORD")
		pgDB, _ := pg.envValue("POSTGRES_DB")
		// README: DB_PORT=54321 DB_PASSWORD=service REDIS_PORT=63791 make run,
		// so user and database must be the service's defaults.
		if pgUser != defaults.dbUser || pgDB != defaults.dbName {
			t.Errorf("%s:%d: PostgreSQL has user %q and database %q; want DB_USER's and DB_NAME's defaults %q and %q", devComposePath, pg.envLine("POSTGRES_USER"), pgUser, pgDB, defaults.dbUser, defaults.dbName)
		}
		for _, svc := range d.sensorhubServices(t) {
			if svc.file != devComposePath {
				continue
			}
			for name, want := range map[string]string{"DB_HOST": pg.name, "DB_USER": pgUser, "DB_PASSWORD": pgPassword, "DB_NAME": pgDB, "REDIS_HOST": redis.name} {
				if got, _ := svc.envValue(name); got != want {
					t.Errorf("%s:%d: service %s: %s is %q; want %q", devComposePath, svc.envLine(name), svc.name, name, got, want)
				}
			}
		}
		for _, dep := range []string{pg.name, redis.name} {
			if cond, line := hub.dependsOn(dep); cond != "service_healthy" {
				t.Errorf("%s:%d: sensorhub depends on %s with condition %q; want service_healthy", devComposePath, line, dep, cond)
			}
		}
	})

	t.Run("ProdNoLiteralSecrets", func(t *testing.T) {
		t.Parallel()
		configSecrets := d.config(t).secrets
		for _, file := range prodComposePaths {
			c := d.compose(t, file)
			for _, svc := range c.services() {
				for _, e := range svc.env() {
					base, isFile := strings.CutSuffix(e.name, "_FILE")
					if !secretName.MatchString(base) && !configSecrets[base] || !e.set {
						continue
					}
					if isFile {
						if err := svc.checkSecretFile(c, e.value); err != nil {
							t.Errorf("%s:%d: service %s: %s: %v", file, e.line, svc.name, e.name, err)
						}
						continue
					}
					if svc.isSensorhub() {
						t.Errorf("%s:%d: service %s: sets %s; sensorhub reads secrets from %s_FILE and a compose secret, never from its environment, which docker inspect shows", file, e.line, svc.name, e.name, base)
						continue
					}
					if !isReference(e.value) {
						t.Errorf("%s:%d: service %s: %s is %q; want a variable reference without a default, such as ${DB_PASSWORD}, or %s_FILE and a secret", file, e.line, svc.name, e.name, e.value, base)
					}
				}
				command, line := svc.command()
				test, testLine := listOf(mapGet(svc.get("healthcheck"), "test"))
				for _, c := range []struct {
					key  string
					argv []string
					line int
				}{{"command", command, line}, {"healthcheck", test, testLine}} {
					for i, a := range c.argv {
						if (a == "--requirepass" || a == "--masterauth" || a == "-a" || a == "--pass") && i+1 < len(c.argv) && !isReference(c.argv[i+1]) {
							t.Errorf("%s:%d: service %s: %s %s passes a literal password", file, c.line, svc.name, c.key, a)
						}
					}
				}
			}
		}
		literal := regexp.MustCompile(`(?i)\bPASSWORD\s+(?:E?'|\$\$)`)
		for i, line := range strings.Split(d.text(t, rolesSQLPath), "\n") {
			if literal.MatchString(line) {
				t.Errorf("%s:%d: a literal password; set passwords with psql's \\password", rolesSQLPath, i+1)
			}
		}
	})

	t.Run("MakefileTargets", func(t *testing.T) {
		t.Parallel()
		mf := parseMakefile(d.text(t, makefilePath))
		for _, target := range makeTargets {
			rule, ok := mf.targets[target]
			if !ok {
				t.Errorf("%s: no target %s", makefilePath, target)
				continue
			}
			if !strings.Contains(rule.text, "## ") {
				t.Errorf("%s:%d: target %s has no ## description, so make help does not list it", makefilePath, rule.line, target)
			}
		}
		if mf.defaultGoal != "help" {
			t.Errorf("%s:%d: the default goal is %q; want help", makefilePath, mf.defaultLine, mf.defaultGoal)
		}
	})

	t.Run("MakefileDocker", func(t *testing.T) {
		t.Parallel()
		mf := parseMakefile(d.text(t, makefilePath))
		args := map[string]bool{}
		for _, s := range d.dockerfile(t) {
			for _, in := range s.all("ARG") {
				for _, name := range declaredNames(in) {
					args[name] = true
				}
			}
		}
		for _, r := range mf.recipes {
			f := strings.Fields(r.text)
			for i, w := range f {
				if w == "--build-arg" && i+1 < len(f) {
					if name, _, _ := strings.Cut(f[i+1], "="); !args[name] {
						t.Errorf("%s:%d: --build-arg %s: the Dockerfile declares no ARG %s", makefilePath, r.line, name, name)
					}
				}
			}
			i := slices.Index(f, "compose")
			if i < 1 || f[i-1] != "docker" {
				continue
			}
			file := devComposePath
			for j := i + 1; j < len(f)-1; j++ {
				if f[j] == "-f" || f[j] == "--file" {
					file = f[j+1]
				}
			}
			up := slices.Index(f, "up")
			if up < 0 {
				continue
			}
			c := d.compose(t, file)
			for _, name := range f[up+1:] {
				if strings.HasPrefix(name, "-") {
					continue
				}
				if _, ok := c.service(name); !ok {
					t.Errorf("%s:%d: docker compose up %s: %s has no such service", makefilePath, r.line, name, file)
				}
			}
		}
	})

	t.Run("DeployREADME", func(t *testing.T) {
		t.Parallel()
		text := d.text(t, deployREADMEPath)
		for _, m := range regexp.MustCompile(`\]\(([^)#\s]+)`).FindAllStringSubmatch(text, -1) {
			if strings.Contains(m[1], "://") {
				continue
			}
			if p := path.Join(path.Dir(deployREADMEPath), m[1]); !d.exists(p) {
				t.Errorf("%s: links to %s, which does not exist", deployREADMEPath, p)
			}
		}
		for _, p := range regexp.MustCompile(`(?:^|[\s\x60(<])((?:deploy/[\w./-]+\w)|(?:docker-compose[\w.-]*\.ya?ml)|(?:\.dockerignore))`).FindAllStringSubmatch(text, -1) {
			if !d.exists(p[1]) {
				t.Errorf("%s: names %s, which does not exist", deployREADMEPath, p[1])
			}
		}
		for _, file := range prodComposePaths {
			c := d.compose(t, file)
			if want := "docker compose -f " + file + " up -d"; !strings.Contains(text, want) {
				t.Errorf("%s: no step %q", deployREADMEPath, want)
			}
			for _, kind := range []string{"network", "volume"} {
				for _, p := range mapPairs(c.doc.get(kind + "s")) {
					if scalarOf(mapGet(p.val, "external")) != "true" {
						continue
					}
					name := p.key
					if n := scalarOf(mapGet(p.val, "name")); n != "" {
						name = withDefaults(n)
					}
					want := "docker " + kind + " create " + name
					if !regexp.MustCompile(regexp.QuoteMeta(want) + `(?:[\s\x60]|$)`).MatchString(text) {
						t.Errorf("%s:%d: external %s %s; %s has no step %q", file, p.keyNode.Line, kind, name, deployREADMEPath, want)
					}
				}
			}
		}
	})
}

// scalingDocPath documents the replicas example and its command.
const scalingDocPath = "docs/scaling.md"

// checkReplicasCompose checks that the replicas example scales: its
// sensorhub service names no consumer (each replica is its own, by host
// name), runs no bridge, and publishes a host port range rather than one
// port; one bridge service runs the bridge; and the docs give the command
// that scales it.
func checkReplicasCompose(t *testing.T, d *deployFiles) {
	c := d.compose(t, replicasComposePath)
	hub, ok := c.service("sensorhub")
	if !ok {
		t.Fatalf("%s: no service sensorhub", replicasComposePath)
	}
	if v, ok := hub.envValue("SENSORHUB_CONSUMER"); ok {
		t.Errorf("%s:%d: sensorhub sets SENSORHUB_CONSUMER=%s: scaled replicas would share one consumer name", replicasComposePath, hub.line, v)
	}
	if v, _ := hub.envValue("SENSORHUB_BRIDGE"); v != "false" {
		t.Errorf("%s:%d: sensorhub has SENSORHUB_BRIDGE=%q; want false, so that each Pub/Sub message is appended once, by the bridge service", replicasComposePath, hub.line, v)
	}
	for _, p := range hub.ports() {
		if p.published != "" && !strings.Contains(p.published, "-") {
			t.Errorf("%s:%d: sensorhub publishes host port %s; scaled replicas need a range (or none)", replicasComposePath, hub.line, p)
		}
	}
	bridges := 0
	for _, svc := range c.services() {
		if argv, _ := svc.command(); slices.Equal(argv, []string{"bridge"}) {
			bridges++
		}
	}
	if bridges != 1 {
		t.Errorf("%s: %d services run the bridge; want one", replicasComposePath, bridges)
	}
	doc, err := os.ReadFile(filepath.Join(d.root, filepath.FromSlash(scalingDocPath)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "docker compose -f " + replicasComposePath + " up --scale sensorhub="; !strings.Contains(string(doc), want) {
		t.Errorf("%s: no step %q", scalingDocPath, want)
	}
}

// secretName matches variable names that hold secrets by name alone; the
// config's own secrets (those with a _FILE variant) are found by recording.
var secretName = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY)`)

// deployFiles holds the repository's deployment files, read and parsed
// once; each accessor fails the calling test when its file is missing or
// does not parse.
type deployFiles struct {
	root     string
	texts    map[string]string
	errs     map[string]error
	stages   []stage
	composes map[string]*composeFile

	configOnce sync.Once
	cfgVars    configVars
	cfgErr     error
}

func loadDeployFiles(t *testing.T) *deployFiles {
	t.Helper()
	d := &deployFiles{root: filepath.Join("..", ".."), texts: map[string]string{}, errs: map[string]error{}, composes: map[string]*composeFile{}}
	if _, err := os.Stat(filepath.Join(d.root, goModPath)); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	for _, p := range append([]string{dockerfilePath, dockerignorePath, makefilePath, goModPath, deployREADMEPath, rolesSQLPath}, composePaths...) {
		b, err := os.ReadFile(filepath.Join(d.root, filepath.FromSlash(p)))
		if err != nil {
			d.errs[p] = err
			continue
		}
		d.texts[p] = string(b)
	}
	if text, ok := d.texts[dockerfilePath]; ok {
		stages, err := parseDockerfile(text)
		if err != nil {
			d.errs[dockerfilePath] = err
		}
		d.stages = stages
	}
	for _, p := range composePaths {
		if text, ok := d.texts[p]; ok {
			c, err := parseCompose(p, text)
			if err != nil {
				d.errs[p] = err
			}
			d.composes[p] = c
		}
	}
	return d
}

func (d *deployFiles) text(t *testing.T, p string) string {
	t.Helper()
	if err := d.errs[p]; err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return d.texts[p]
}

func (d *deployFiles) exists(p string) bool {
	_, err := os.Stat(filepath.Join(d.root, filepath.FromSlash(p)))
	return err == nil
}

func (d *deployFiles) dockerfile(t *testing.T) []stage {
	t.Helper()
	d.text(t, dockerfilePath)
	return d.stages
}

func (d *deployFiles) compose(t *testing.T, p string) *composeFile {
	t.Helper()
	d.text(t, p)
	c, ok := d.composes[p]
	if !ok {
		t.Fatalf("%s: not one of the compose files this test reads (%v)", p, composePaths)
	}
	return c
}

// sensorhubServices returns the services of every compose file that run the
// sensorhub image.
func (d *deployFiles) sensorhubServices(t *testing.T) []service {
	t.Helper()
	var out []service
	for _, p := range composePaths {
		for _, svc := range d.compose(t, p).services() {
			if svc.isSensorhub() {
				out = append(out, svc)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no compose file has a service that runs sensorhub")
	}
	return out
}

// secretFile is a compose secret's file on the host.
type secretFile struct{ compose, name, path string }

// composeSecretFiles returns the host files of the production compose
// files' secrets that lie inside the repository, relative to its root.
func (d *deployFiles) composeSecretFiles(t *testing.T) []secretFile {
	t.Helper()
	var out []secretFile
	for _, p := range prodComposePaths {
		for _, s := range mapPairs(d.compose(t, p).doc.get("secrets")) {
			f := withDefaults(scalarOf(mapGet(s.val, "file")))
			if f == "" || filepath.IsAbs(f) {
				continue
			}
			rel := path.Clean(path.Join(path.Dir(p), f))
			if rel == ".." || strings.HasPrefix(rel, "../") {
				continue
			}
			out = append(out, secretFile{p, s.key, rel})
		}
	}
	return out
}

// buildInputs returns what go build ./cmd/sensorhub may read in the build
// context: go.mod, go.sum, every non-test Go file and the files their
// //go:embed directives name.
func (d *deployFiles) buildInputs(t *testing.T) []string {
	t.Helper()
	out := []string{"go.mod", "go.sum"}
	embed := regexp.MustCompile(`(?m)^//go:embed\s+(.+)$`)
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(d.root, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if name := e.Name(); rel != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		out = append(out, rel)
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range embed.FindAllStringSubmatch(string(src), -1) {
			for _, pattern := range strings.Fields(m[1]) {
				matches, _ := filepath.Glob(filepath.Join(filepath.Dir(p), filepath.FromSlash(pattern)))
				for _, f := range matches {
					r, _ := filepath.Rel(d.root, f)
					out = append(out, filepath.ToSlash(r))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// configVars is what loadConfig reads.
type configVars struct {
	names   map[string]bool // every variable loadConfig asked getenv for
	secrets map[string]bool // those it also reads from <NAME>_FILE
}

// config derives the variables the service knows by running loadConfig
// with a recording getenv: on the empty environment, which takes every
// default branch, and on each compose service's environment, which takes
// the branches those values select. No hand-kept list can fall behind.
func (d *deployFiles) config(t *testing.T) configVars {
	t.Helper()
	d.configOnce.Do(func() {
		v := configVars{names: map[string]bool{}, secrets: map[string]bool{}}
		envs := []map[string]string{{}}
		for _, p := range composePaths {
			c, ok := d.composes[p]
			if !ok || c.doc.n == nil {
				continue
			}
			for _, svc := range c.services() {
				if !svc.isSensorhub() {
					continue
				}
				env := map[string]string{}
				for _, e := range svc.env() {
					env[e.name] = withDefaults(e.value)
				}
				envs = append(envs, env)
			}
		}
		for _, env := range envs {
			_, _ = loadConfig(func(k string) string { // errors do not matter: only what is read
				v.names[k] = true
				return env[k]
			})
		}
		for name := range v.names {
			if base, ok := strings.CutSuffix(name, "_FILE"); ok && v.names[base] {
				v.secrets[base] = true
			}
		}
		// Every secret also reads from <NAME>_FILE (DESIGN.md §6), however
		// loadConfig happens to read it.
		for name := range maps.Clone(v.names) {
			if secretName.MatchString(name) && !strings.HasSuffix(name, "_FILE") {
				v.secrets[name] = true
				v.names[name+"_FILE"] = true
			}
		}
		if !v.names["DB_HOST"] || !v.secrets["DB_PASSWORD"] {
			d.cfgErr = errors.New("recording loadConfig's getenv saw neither DB_HOST nor DB_PASSWORD/DB_PASSWORD_FILE")
		}
		d.cfgVars = v
	})
	if d.cfgErr != nil {
		t.Fatal(d.cfgErr)
	}
	return d.cfgVars
}

// configDefaults are the values loadConfig uses when nothing is set.
type configDefaults struct{ apiPort, dbUser, dbName string }

func (d *deployFiles) defaults(t *testing.T) configDefaults {
	t.Helper()
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatalf("loadConfig with an empty environment: %v", err)
	}
	_, port, err := net.SplitHostPort(cfg.apiAddr)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cfg.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	return configDefaults{apiPort: port, dbUser: u.User.Username(), dbName: strings.TrimPrefix(u.Path, "/")}
}

// cliCommands are the commands main.go's usage lists, each with the words
// its first argument may be when the usage names them (migrate up|down|status).
type cliCommands map[string][]string

func (d *deployFiles) commands(t *testing.T) cliCommands {
	t.Helper()
	cmds := cliCommands{}
	_, section, ok := strings.Cut(usage, "commands:\n")
	if !ok {
		t.Fatal("usage has no commands: section")
	}
	columns := regexp.MustCompile(`\s{2,}`)
	words := regexp.MustCompile(`^[a-z]+(?:\|[a-z]+)*$`)
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "  ") {
			if strings.TrimSpace(line) == "" && len(cmds) > 0 {
				break
			}
			continue
		}
		syntax := strings.Fields(columns.Split(strings.TrimSpace(line), 2)[0])
		name := syntax[0]
		if _, ok := cmds[name]; !ok {
			cmds[name] = nil
		}
		if len(syntax) > 1 && words.MatchString(syntax[1]) {
			cmds[name] = append(cmds[name], strings.Split(syntax[1], "|")...)
		}
	}
	if len(cmds) == 0 {
		t.Fatal("usage lists no commands")
	}
	return cmds
}

// check reports whether argv starts with a command the binary knows.
func (c cliCommands) check(argv []string) error {
	if len(argv) == 0 {
		return errors.New("no command")
	}
	subs, ok := c[argv[0]]
	if !ok {
		return fmt.Errorf("sensorhub has no command %q (usage in main.go lists %v)", argv[0], slices.Sorted(maps.Keys(c)))
	}
	if len(subs) > 0 && (len(argv) < 2 || !slices.Contains(subs, argv[1])) {
		return fmt.Errorf("sensorhub %s takes one of %v", argv[0], subs)
	}
	return nil
}

// --- Dockerfile ----------------------------------------------------------

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int    // 1-based line of the instruction's first line
	cmd  string // upper case: FROM, RUN, USER...
	args string
}

// stage is a FROM and the instructions up to the next FROM.
type stage struct {
	from   instruction
	image  string
	name   string
	instrs []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s stage) last(cmd string) *instruction {
	all := s.all(cmd)
	if len(all) == 0 {
		return nil
	}
	return &all[len(all)-1]
}

// parseDockerfile splits a Dockerfile into stages. It knows what this
// repository's Dockerfile uses: comments, backslash continuations, flags;
// not heredocs or a changed escape character.
func parseDockerfile(src string) ([]stage, error) {
	var (
		stages  []stage
		logical strings.Builder
		start   int
	)
	lines := strings.Split(src, "\n")
	for i, raw := range lines {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue // also inside a continuation, as Docker does
		}
		if logical.Len() == 0 {
			start = i + 1
		}
		cont := strings.HasSuffix(line, `\`)
		logical.WriteString(strings.TrimSuffix(line, `\`))
		if cont && i < len(lines)-1 {
			logical.WriteString(" ")
			continue
		}
		word, args, _ := strings.Cut(strings.TrimSpace(logical.String()), " ")
		logical.Reset()
		if strings.Contains(args, "<<") && (strings.EqualFold(word, "RUN") || strings.EqualFold(word, "COPY")) {
			return nil, fmt.Errorf("line %d: heredocs are not supported by this test's parser", start)
		}
		in := instruction{line: start, cmd: strings.ToUpper(word), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			_, rest := cutFlags(in.args)
			f := strings.Fields(rest)
			if len(f) == 0 {
				return nil, fmt.Errorf("line %d: FROM without an image", start)
			}
			s := stage{from: in, image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue // global ARG before the first FROM
			}
			return nil, fmt.Errorf("line %d: %s before the first FROM", start, in.cmd)
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	if len(stages) == 0 {
		return nil, errors.New("no FROM")
	}
	return stages, nil
}

// cutFlags splits "--a=b --c=d rest" into its flags and the rest.
func cutFlags(args string) (flags []string, rest string) {
	rest = strings.TrimSpace(args)
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		flags = append(flags, flag)
		rest = strings.TrimSpace(after)
	}
	return flags, rest
}

// execForm parses the JSON (exec) form ["a", "b"] of CMD, ENTRYPOINT and
// HEALTHCHECK CMD; ok is false for the shell form.
func execForm(s string) (argv []string, ok bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	if err := json.Unmarshal([]byte(s), &argv); err != nil || len(argv) == 0 {
		return nil, false
	}
	return argv, true
}

// declaredNames returns the variables an ENV or ARG instruction declares:
// ARG NAME[=default] ..., ENV NAME=value ... or the legacy ENV NAME value.
func declaredNames(in instruction) []string {
	fields := strings.Fields(in.args)
	if len(fields) == 0 {
		return nil
	}
	if in.cmd == "ENV" && !strings.Contains(fields[0], "=") {
		return fields[:1]
	}
	var names []string
	for _, f := range fields {
		if name, _, ok := strings.Cut(f, "="); ok || in.cmd == "ARG" {
			if regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(name) {
				names = append(names, name)
			}
		}
	}
	return names
}

// --- .dockerignore -------------------------------------------------------

type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
}

// parseDockerignore reads .dockerignore patterns with Docker's semantics
// as far as this repository needs them: * and ? within a path element, **
// across elements, ! exceptions, the last matching pattern wins, and a
// pattern that matches a directory excludes what is in it.
func parseDockerignore(src string) dockerignore {
	var d dockerignore
	for _, line := range strings.Split(src, "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		negate := strings.HasPrefix(p, "!")
		p = path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/"))
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch c := p[i]; {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(?:.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		d = append(d, struct {
			re     *regexp.Regexp
			negate bool
		}{regexp.MustCompile(re.String()), negate})
	}
	return d
}

func (d dockerignore) excluded(p string) bool {
	excluded := false
	for _, pat := range d {
		for q := p; q != "." && q != "/"; q = path.Dir(q) {
			if pat.re.MatchString(q) {
				excluded = !pat.negate
				break
			}
		}
	}
	return excluded
}

// --- Makefile ------------------------------------------------------------

type makeLine struct {
	line int
	text string
}

type makefile struct {
	targets     map[string]makeLine // rule lines by target
	recipes     []makeLine
	defaultGoal string
	defaultLine int
}

// parseMakefile finds rules, recipe lines and the default goal: the
// .DEFAULT_GOAL, or else the first target that is not special.
func parseMakefile(src string) makefile {
	mf := makefile{targets: map[string]makeLine{}}
	rule := regexp.MustCompile(`^([^\s#:=][^:=#]*?)\s*::?(.*)$`)
	goal := regexp.MustCompile(`^\.DEFAULT_GOAL\s*:?=\s*(\S+)`)
	first, firstLine := "", 0
	for i, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(line, "\t") {
			mf.recipes = append(mf.recipes, makeLine{i + 1, line})
			continue
		}
		if m := goal.FindStringSubmatch(line); m != nil {
			mf.defaultGoal, mf.defaultLine = m[1], i+1
			continue
		}
		m := rule.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[2], "=") {
			continue // not a rule, or an assignment with := or ::=
		}
		for _, target := range strings.Fields(m[1]) {
			if _, ok := mf.targets[target]; !ok {
				mf.targets[target] = makeLine{i + 1, line}
			}
			if first == "" && !strings.HasPrefix(target, ".") && !strings.ContainsAny(target, "%$") {
				first, firstLine = target, i+1
			}
		}
	}
	if mf.defaultGoal == "" {
		mf.defaultGoal, mf.defaultLine = first, firstLine
	}
	return mf
}

// --- compose files -------------------------------------------------------

type composeFile struct {
	path string
	doc  node // the top-level mapping
}

func parseCompose(p, src string) (*composeFile, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		return &composeFile{path: p}, err
	}
	root := resolve(&doc)
	if root == nil || root.Kind != yaml.MappingNode {
		return &composeFile{path: p}, errors.New("not a YAML mapping")
	}
	c := &composeFile{path: p, doc: node{root}}
	if c.doc.get("services") == nil {
		return c, errors.New("no services")
	}
	return c, nil
}

// top returns the top-level definition kind.name (networks.sensorhub).
func (c *composeFile) top(kind, name string) *yaml.Node {
	return mapGet(c.doc.get(kind), name)
}

func (c *composeFile) services() []service {
	if c.doc.n == nil {
		return nil
	}
	var out []service
	for _, p := range mapPairs(c.doc.get("services")) {
		out = append(out, service{file: c.path, name: p.key, line: p.keyNode.Line, node: node{p.val}})
	}
	return out
}

func (c *composeFile) service(name string) (service, bool) {
	for _, s := range c.services() {
		if s.name == name {
			return s, true
		}
	}
	return service{}, false
}

// node is a YAML mapping whose aliases and merge keys (<<: *anchor) get
// resolves.
type node struct{ n *yaml.Node }

func (n node) get(key string) *yaml.Node { return mapGet(n.n, key) }

type service struct {
	file, name string
	line       int
	node
}

func (s service) str(key string) string { return scalarOf(s.get(key)) }

// scalar returns the value of key and the line to blame: the value's, or
// the service's when key is missing.
func (s service) scalar(key string) (string, int) {
	if n := s.get(key); n != nil {
		return scalarOf(n), n.Line
	}
	return "", s.line
}

func (s service) list(key string) ([]string, int) {
	if n := s.get(key); n != nil {
		l, _ := listOf(n)
		return l, n.Line
	}
	return nil, s.line
}

// isSensorhub reports whether the service runs the sensorhub image: it
// builds this repository, or its image is .../sensorhub:tag.
func (s service) isSensorhub() bool {
	if s.get("build") != nil {
		return true
	}
	return regexp.MustCompile(`(?:^|/)sensorhub(?:[:@]|$)`).MatchString(withDefaults(s.str("image")))
}

// command returns the service's command as an argument list (nil when it
// has none), and its line.
func (s service) command() ([]string, int) {
	n := s.get("command")
	if n == nil {
		return nil, s.line
	}
	return listOf(n)
}

type envVar struct {
	name, value string
	set         bool // false for a bare NAME, passed through from the host
	line        int
}

// env returns the service's environment, in either of compose's forms.
func (s service) env() []envVar {
	n := s.get("environment")
	if n == nil {
		return nil
	}
	var out []envVar
	switch n.Kind {
	case yaml.MappingNode:
		for _, p := range mapPairs(n) {
			v := resolve(p.val)
			out = append(out, envVar{name: p.key, value: v.Value, set: v.Tag != "!!null", line: p.keyNode.Line})
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			item = resolve(item)
			name, value, set := strings.Cut(item.Value, "=")
			out = append(out, envVar{name: name, value: value, set: set, line: item.Line})
		}
	}
	return out
}

// envValue returns the value of the variable name, interpolated with the
// defaults compose would use.
func (s service) envValue(name string) (string, bool) {
	for _, e := range s.env() {
		if e.name == name && e.set {
			return withDefaults(e.value), true
		}
	}
	return "", false
}

// envLine returns the line that sets the variable name, or the service's.
func (s service) envLine(name string) int {
	for _, e := range s.env() {
		if e.name == name {
			return e.line
		}
	}
	return s.line
}

// dependsOn returns the condition the service waits for on dep
// (service_started for the short form), or "" when it does not depend on it.
func (s service) dependsOn(dep string) (string, int) {
	n := s.get("depends_on")
	if n == nil {
		return "", s.line
	}
	if n.Kind == yaml.SequenceNode {
		if l, _ := listOf(n); slices.Contains(l, dep) {
			return "service_started", n.Line
		}
		return "", n.Line
	}
	d := mapGet(n, dep)
	if d == nil {
		return "", n.Line
	}
	if c := scalarOf(mapGet(d, "condition")); c != "" {
		return c, d.Line
	}
	return "service_started", d.Line
}

func (s service) networks() ([]string, int) {
	n := s.get("networks")
	if n == nil {
		return nil, s.line
	}
	if n.Kind == yaml.MappingNode {
		var names []string
		for _, p := range mapPairs(n) {
			names = append(names, p.key)
		}
		return names, n.Line
	}
	l, _ := listOf(n)
	return l, n.Line
}

type portMapping struct{ hostIP, published, target string }

func (p portMapping) String() string {
	return strings.TrimPrefix(p.hostIP+":"+p.published+":"+p.target, ":")
}

// ports returns the service's published ports, short or long syntax,
// interpolated with defaults.
func (s service) ports() []portMapping {
	var out []portMapping
	n := s.get("ports")
	if n == nil {
		return nil
	}
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind == yaml.MappingNode {
			out = append(out, portMapping{
				hostIP:    withDefaults(scalarOf(mapGet(item, "host_ip"))),
				published: withDefaults(scalarOf(mapGet(item, "published"))),
				target:    withDefaults(scalarOf(mapGet(item, "target"))),
			})
			continue
		}
		spec, _, _ := strings.Cut(withDefaults(item.Value), "/")
		parts := strings.Split(spec, ":")
		switch len(parts) {
		case 1:
			out = append(out, portMapping{target: parts[0]})
		case 2:
			out = append(out, portMapping{published: parts[0], target: parts[1]})
		default:
			k := len(parts)
			out = append(out, portMapping{hostIP: strings.Join(parts[:k-2], ":"), published: parts[k-2], target: parts[k-1]})
		}
	}
	return out
}

type volumeMount struct {
	source, target string
	line           int
}

func (s service) volumes() []volumeMount {
	var out []volumeMount
	n := s.get("volumes")
	if n == nil {
		return nil
	}
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind == yaml.MappingNode {
			out = append(out, volumeMount{scalarOf(mapGet(item, "source")), scalarOf(mapGet(item, "target")), item.Line})
			continue
		}
		parts := strings.Split(withDefaults(item.Value), ":")
		if len(parts) >= 2 {
			out = append(out, volumeMount{parts[0], parts[1], item.Line})
		}
	}
	return out
}

// checkSecretFile checks that a <NAME>_FILE value is a compose secret the
// service mounts and c defines.
func (s service) checkSecretFile(c *composeFile, value string) error {
	v := withDefaults(value)
	name, ok := strings.CutPrefix(v, "/run/secrets/")
	if !ok {
		return fmt.Errorf("%q is not a compose secret (/run/secrets/...)", v)
	}
	n := s.get("secrets")
	if n == nil {
		return fmt.Errorf("names %s, but the service mounts no secrets", v)
	}
	for _, item := range n.Content {
		item = resolve(item)
		source, target := item.Value, item.Value
		if item.Kind == yaml.MappingNode {
			source = scalarOf(mapGet(item, "source"))
			target = source
			if t := scalarOf(mapGet(item, "target")); t != "" {
				target = strings.TrimPrefix(t, "/run/secrets/")
			}
		}
		if target != name {
			continue
		}
		if c.top("secrets", source) == nil {
			return fmt.Errorf("mounts the secret %s, which the file does not define", source)
		}
		return nil
	}
	return fmt.Errorf("names %s, but the service mounts no secret there", v)
}

// --- YAML helpers --------------------------------------------------------

// resolve follows aliases and unwraps documents.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch n.Kind {
		case yaml.AliasNode:
			n = n.Alias
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		default:
			return n
		}
	}
	return nil
}

type pair struct {
	key     string
	keyNode *yaml.Node
	val     *yaml.Node
}

// mapPairs returns a mapping's entries with YAML merge keys applied: keys
// of the mapping itself win over merged ones, earlier merges over later.
func mapPairs(n *yaml.Node) []pair {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
			sources := []*yaml.Node{v}
			if rv := resolve(v); rv != nil && rv.Kind == yaml.SequenceNode {
				sources = rv.Content
			}
			for _, src := range sources {
				merged = append(merged, mapPairs(src)...)
			}
			continue
		}
		own = append(own, pair{k.Value, k, resolve(v)})
	}
	out := own
	for _, p := range merged {
		if !slices.ContainsFunc(out, func(q pair) bool { return q.key == p.key }) {
			out = append(out, p)
		}
	}
	return out
}

func mapGet(n *yaml.Node, key string) *yaml.Node {
	for _, p := range mapPairs(n) {
		if p.key == key {
			return p.val
		}
	}
	return nil
}

func scalarOf(n *yaml.Node) string {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

// listOf returns a sequence of scalars, or a string split into words as
// compose splits a string command.
func listOf(n *yaml.Node) ([]string, int) {
	n = resolve(n)
	if n == nil {
		return nil, 0
	}
	if n.Kind == yaml.ScalarNode {
		return strings.Fields(n.Value), n.Line
	}
	var out []string
	for _, item := range n.Content {
		out = append(out, scalarOf(item))
	}
	return out, n.Line
}

// --- compose interpolation -----------------------------------------------

var interpolation = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// withDefaults returns s as compose interpolates it when no variable is
// set: ${V:-d} and ${V-d} become d, every other reference "", $$ a $.
func withDefaults(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := interpolation.FindStringSubmatch(m)
		if sub[2] == "-" || sub[2] == ":-" {
			return sub[3]
		}
		return ""
	})
}

// isReference reports whether s is exactly one variable reference without
// a default (${V}, ${V:?message}): a value that only the environment gives.
func isReference(s string) bool {
	return regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}$`).MatchString(strings.TrimSpace(s))
}
