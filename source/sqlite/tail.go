package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lakelink/lakelink"
)

// Tail returns the sequence number of the link's latest logged change
// (lakelink.Tailer), or 0 when it has none. Acknowledged changes are
// trimmed from the log, so the number comes from the log's AUTOINCREMENT
// counter, which only grows.
func (s *Source) Tail(ctx context.Context, link string) (lakelink.Position, error) {
	n := names{link: link}
	var seq int64
	err := s.read(ctx, nil, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = ?), 0)`, n.log()).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: end of the change log of link %q: %w", link, err)
	}
	return lakelink.Position(seq), nil
}
