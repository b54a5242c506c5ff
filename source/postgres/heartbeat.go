package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// defaultHeartbeat is how often, at most, a stream whose tables are idle
// while the rest of the database is busy writes a heartbeat, unless the
// source URL says otherwise (heartbeat=...).
const defaultHeartbeat = 10 * time.Second

// heartbeatParam is the source URL's query parameter for the heartbeat
// interval. It is lakelink's, not PostgreSQL's: it is taken out of the URL
// before connecting.
const heartbeatParam = "heartbeat"

// splitParams takes lakelink's own parameters out of a source URL
// (postgres://...?heartbeat=5s) or a keyword/value connection string
// (host=... heartbeat=5s), and returns the rest, which is what pgx reads,
// with the heartbeat interval: defaultHeartbeat when the parameter is
// absent, 0 when it is "0" or "off" (no heartbeats).
func splitParams(dsn string) (string, time.Duration, error) {
	hb, value, found := defaultHeartbeat, "", false
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		base, query, hasQuery := strings.Cut(dsn, "?")
		if hasQuery {
			frag := ""
			if i := strings.IndexByte(query, '#'); i >= 0 {
				query, frag = query[:i], query[i:]
			}
			var kept []string
			for _, kv := range strings.Split(query, "&") {
				if k, v, _ := strings.Cut(kv, "="); k == heartbeatParam {
					value, found = v, true
					continue
				}
				kept = append(kept, kv)
			}
			dsn = base
			if len(kept) > 0 {
				dsn += "?" + strings.Join(kept, "&")
			}
			dsn += frag
		}
	} else {
		var kept []string
		for _, f := range strings.Fields(dsn) {
			if k, v, _ := strings.Cut(f, "="); k == heartbeatParam {
				value, found = v, true
				continue
			}
			kept = append(kept, f)
		}
		if found {
			dsn = strings.Join(kept, " ")
		}
	}
	if !found {
		return dsn, hb, nil
	}
	switch value {
	case "0", "off":
		return dsn, 0, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < 0 {
		return "", 0, fmt.Errorf("postgres: source URL: %s=%q: use a duration such as 10s, or off", heartbeatParam, value)
	}
	return dsn, d, nil
}

// heartbeatSQL writes a transactional logical decoding message: the link's
// slot decodes it as a transaction of its own (BEGIN, MESSAGE, COMMIT, with
// messages 'true'), which the stream delivers as an OpCommit without rows.
const heartbeatSQL = "SELECT pg_logical_emit_message(true, $1, 'heartbeat')"

// beat writes one heartbeat through the pool (never the replication
// connection, which only the stream's goroutine uses). It runs in a
// goroutine of its own, started by keepalive, one at a time. A failure is
// logged (once per stream) and otherwise ignored: the stream still moves
// the slot with progress commits.
func (st *stream) beat(ctx context.Context) {
	defer st.beats.Done()
	defer st.beating.Store(false)
	ctx, cancel := context.WithTimeout(ctx, max(st.heartbeat, 5*time.Second))
	defer cancel()
	_, err := st.s.pool.Exec(ctx, heartbeatSQL, st.slot)
	if err != nil && ctx.Err() == nil && st.beatFailed.CompareAndSwap(false, true) {
		st.s.logger.Warn("heartbeat failed; the slot still advances, more slowly, while the link's tables are idle",
			"link", st.link, "slot", st.slot, "err", err)
	}
}
