# syntax=docker/dockerfile:1
#
# The sensorhub image: one static binary on distroless, non-root, no shell.
#
#   docker build --build-arg VERSION=v0.1.0 -t <user>/sensorhub:v0.1.0 .   (make docker-build)
#
# Checked by cmd/sensorhub/deploy_test.go: the golang tag equals go.mod's go
# line, the final user is 65532, HEALTHCHECK and CMD name commands the binary
# knows. Plain `docker build` with any builder works: no BuildKit-only syntax.

# The build stage's Go is go.mod's go version exactly; GOTOOLCHAIN=local makes
# a mismatch fail the build instead of downloading another toolchain into it.
FROM golang:1.27.3-bookworm AS build
ENV GOTOOLCHAIN=local
WORKDIR /src
# Dependencies first, so that a change of the code alone reuses this layer.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
# VERSION is the only build argument: never pass a secret as one, it would be
# kept in the image's history.
ARG VERSION=dev
# Static (no cgo, no libc), reproducible paths (-trimpath), version stamped
# into main.version. tzdata is compiled in (main.go imports time/tzdata), so
# SENSORHUB_TIMEZONE=Europe/Berlin works without /usr/share/zoneinfo.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sensorhub ./cmd/sensorhub

# static-debian12 has CA certificates and /etc/passwd with nonroot (65532),
# nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="sensorhub" \
      org.opencontainers.image.description="Stores weather-sensor readings from Redis in PostgreSQL" \
      org.opencontainers.image.version="${VERSION}"
# Owned by root and not writable by the user it runs as.
COPY --from=build /out/sensorhub /usr/local/bin/sensorhub
# Numeric, so that runtimes can verify non-root without reading /etc/passwd.
USER 65532:65532
# API_PORT's default: /healthcheck, /readyz, /livez.
EXPOSE 5005
# Exec form: there is no shell to run a shell-form command. `sensorhub
# healthcheck` asks the local /healthcheck (API_HOST/API_PORT from the same
# environment) and exits 0 only on 200. start-period covers start-up (30 s
# at most); timeout exceeds the command's own 5 s.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/sensorhub", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/sensorhub"]
CMD ["run"]
