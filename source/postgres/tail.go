package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pglogrepl"

	"github.com/lakelink/lakelink"
)

// Tail returns the server's current WAL position (lakelink.Tailer): every
// transaction committed now ends before it, and the stream passes it with a
// commit or a progress commit once it has decoded that far.
func (s *Source) Tail(ctx context.Context, link string) (lakelink.Position, error) {
	var text string
	if err := s.pool.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&text); err != nil {
		return 0, fmt.Errorf("postgres: current WAL position: %w", err)
	}
	lsn, err := pglogrepl.ParseLSN(text)
	if err != nil {
		return 0, fmt.Errorf("postgres: current WAL position %q: %w", text, err)
	}
	return lakelink.Position(lsn), nil
}
