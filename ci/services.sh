#!/usr/bin/env bash
# ci/services.sh: start the real servers the tests talk to, as plain
# processes on loopback, and export their endpoints (read by
# internal/testenv). Source it, then: start_services; trap stop_services EXIT
#
#   PostgreSQL (Debian's package) with wal_level=logical   PG_TEST_DSN
#   Azurite (npm), blob endpoint                           AZURE_BLOB_ENDPOINT, AZURE_STORAGE_*
#   versitygw (go install), S3 over a posix folder         S3_ENDPOINT, AWS_*
#   Chromium (Debian's package), headless, for the web UI   LAKELINK_BROWSER_TEST=1
#
# PG_TEST_BIN, AZURITE_BIN and VGW_BIN name the server programs, for tests
# that start a private server to stop and restart (outages, restarts):
# never stop the shared ones, other packages' tests run at the same time.
#
# Tools are installed once into $CI_TOOLS (kept between runs on a machine);
# a new machine installs them again. See shared notes/test-services.md.

CI_TOOLS=${CI_TOOLS:-$HOME/.cache/lake-ci}
AZURITE_VERSION=${AZURITE_VERSION:-3.37.0}
VGW_VERSION=${VGW_VERSION:-v1.8.0}
PGPORT=${PGPORT:-54329}
AZ_PORT=${AZ_PORT:-10000}
S3_PORT=${S3_PORT:-7070}

wait_port() { # wait_port PORT NAME
	for _ in $(seq 1 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.2
	done
	echo "services: $2 did not open port $1" >&2
	return 1
}

as_postgres() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
	if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
		echo "services: installing postgresql"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	fi
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
	PGROOT=$(mktemp -d /tmp/lakelink-pg.XXXXXX)
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$PGROOT"
	as_postgres "$PGBIN/initdb" -D "$PGROOT/data" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$PGROOT/initdb.log"
	as_postgres "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 60 start -o \
		"-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGROOT -c wal_level=logical -c max_replication_slots=40 -c max_wal_senders=40 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null
	export PG_TEST_DSN="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
	# For tests that run a private server of their own (restarts, outages).
	export PG_TEST_BIN="$PGBIN"
	echo "services: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (wal_level=logical)"
}

pg_stop() {
	[ -n "${PGROOT:-}" ] || return 0
	as_postgres "$PGBIN/pg_ctl" -D "$PGROOT/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$PGROOT"
	PGROOT=
}

azurite_start() {
	local dir="$CI_TOOLS/azurite-$AZURITE_VERSION"
	if [ ! -x "$dir/node_modules/.bin/azurite-blob" ]; then
		echo "services: installing azurite $AZURITE_VERSION"
		mkdir -p "$dir"
		npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
	fi
	AZROOT=$(mktemp -d /tmp/lakelink-azurite.XXXXXX)
	"$dir/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZ_PORT" --location "$AZROOT" \
		--silent --skipApiVersionCheck --loose --disableTelemetry >"$AZROOT.log" 2>&1 &
	AZURITE_PID=$!
	wait_port "$AZ_PORT" azurite
	export AZURE_STORAGE_ACCOUNT=devstoreaccount1
	# Azurite's published development key, not a secret.
	export AZURE_STORAGE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
	export AZURE_BLOB_ENDPOINT="http://127.0.0.1:$AZ_PORT/devstoreaccount1/"
	export AZURITE_BIN="$dir/node_modules/.bin/azurite-blob"
	export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURE_STORAGE_KEY;BlobEndpoint=http://127.0.0.1:$AZ_PORT/devstoreaccount1;"
	echo "services: Azurite $AZURITE_VERSION on 127.0.0.1:$AZ_PORT"
}

azurite_stop() {
	[ -n "${AZURITE_PID:-}" ] || return 0
	kill "$AZURITE_PID" 2>/dev/null
	wait "$AZURITE_PID" 2>/dev/null
	rm -rf "$AZROOT" "$AZROOT.log"
	AZURITE_PID=
}

s3_start() {
	local bin="$CI_TOOLS/versitygw-$VGW_VERSION/versitygw"
	if [ ! -x "$bin" ]; then
		echo "services: installing versitygw $VGW_VERSION"
		GOBIN="$(dirname "$bin")" go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION"
	fi
	S3ROOT=$(mktemp -d /tmp/lakelink-s3.XXXXXX)
	mkdir -p "$S3ROOT/data"
	ROOT_ACCESS_KEY=lakeci ROOT_SECRET_KEY=lakeci-secret "$bin" --port "127.0.0.1:$S3_PORT" --quiet \
		posix "$S3ROOT/data" >"$S3ROOT/vgw.log" 2>&1 &
	VGW_PID=$!
	wait_port "$S3_PORT" versitygw
	export AWS_ACCESS_KEY_ID=lakeci AWS_SECRET_ACCESS_KEY=lakeci-secret AWS_REGION=us-east-1
	export S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
	export VGW_BIN="$bin"
	echo "services: versitygw $VGW_VERSION on 127.0.0.1:$S3_PORT"
}

s3_stop() {
	[ -n "${VGW_PID:-}" ] || return 0
	kill "$VGW_PID" 2>/dev/null
	wait "$VGW_PID" 2>/dev/null
	rm -rf "$S3ROOT"
	VGW_PID=
}

# browser_start installs Debian's Chromium when it is missing, for the web
# UI's headless browser test (api/browser_test.go), and turns that test on.
browser_start() {
	if ! command -v chromium >/dev/null 2>&1; then
		echo "services: installing chromium (for the web UI's browser test)"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
	fi
	export LAKELINK_BROWSER_TEST=1
	echo "services: $(chromium --version 2>/dev/null | head -1) for the web UI test"
}

start_services() { pg_start && azurite_start && s3_start && browser_start; }
stop_services() { s3_stop; azurite_stop; pg_stop; }
