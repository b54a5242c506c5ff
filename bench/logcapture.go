package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// captureHandler passes records on to the handler it wraps (at that
// handler's level) and keeps the time of chosen engine messages, and their
// "took" attribute, whatever the level: the engine's own account of its
// phases.
type captureHandler struct {
	next  slog.Handler
	state *captured
}

// captured holds, by message, when it was last logged and its "took".
type captured struct {
	mu   sync.Mutex
	when map[string]time.Time
	took map[string]time.Duration
}

// watched are the messages kept.
var watched = map[string]bool{"initial copy started": true, "initial copy done": true}

func newCapture(next slog.Handler) (*slog.Logger, *captured) {
	c := &captured{when: map[string]time.Time{}, took: map[string]time.Duration{}}
	return slog.New(&captureHandler{next: next, state: c}), c
}

func (h *captureHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	if watched[r.Message] {
		h.state.mu.Lock()
		h.state.when[r.Message] = r.Time
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "took" && a.Value.Kind() == slog.KindDuration {
				h.state.took[r.Message] = a.Value.Duration()
			}
			return true
		})
		h.state.mu.Unlock()
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{next: h.next.WithAttrs(as), state: h.state}
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	return &captureHandler{next: h.next.WithGroup(name), state: h.state}
}

// reset forgets what was captured.
func (c *captured) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.when)
	clear(c.took)
}

func (c *captured) get(msg string) (time.Time, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.when[msg], c.took[msg]
}
