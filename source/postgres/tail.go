package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pglogrepl"

	"github.com/lakelink/lakelink"
)

// Tail returns the server's current WAL insert position
// (lakelink.Tailer): every transaction committed now ends before it, even
// under synchronous_commit=off, where the written position can lag behind
// a commit; the stream passes it with a commit or a progress commit once
// it has decoded that far.
func (s *Source) Tail(ctx context.Context, link string) (lakelink.Position, error) {
	var text string
	if err := s.pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&text); err != nil {
		return 0, fmt.Errorf("postgres: current WAL position: %w", err)
	}
	lsn, err := pglogrepl.ParseLSN(text)
	if err != nil {
		return 0, fmt.Errorf("postgres: current WAL position %q: %w", text, err)
	}
	return lakelink.Position(lsn), nil
}
