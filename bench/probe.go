package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/export"
)

// heapSampler records the peak of runtime.MemStats.HeapInuse, sampled every
// 10 ms, and the peak while a window (the merge) is open.
type heapSampler struct {
	stop     chan struct{}
	done     chan struct{}
	window   *atomic.Bool // when set, samples also count for peakWin
	peak     atomic.Uint64
	peakWin  atomic.Uint64
	samples  atomic.Int64
	baseline uint64 // HeapInuse right after the GC that started the sampler
}

// startHeap collects garbage, then samples until stop. window may be nil.
func startHeap(window *atomic.Bool) *heapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{}), window: window, baseline: ms.HeapInuse}
	h.peak.Store(ms.HeapInuse)
	resetHWM()
	go func() {
		defer close(h.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				h.sample()
				return
			case <-t.C:
				h.sample()
			}
		}
	}()
	return h
}

func (h *heapSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.samples.Add(1)
	raise(&h.peak, ms.HeapInuse)
	if h.window != nil && h.window.Load() {
		raise(&h.peakWin, ms.HeapInuse)
	}
}

func raise(a *atomic.Uint64, v uint64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// heapStats is what a sampler saw.
type heapStats struct {
	Baseline uint64 // HeapInuse after GC, before the measured work
	Peak     uint64 // peak HeapInuse during the work
	PeakWin  uint64 // peak HeapInuse while the window was open (0 if never sampled)
	HWM      uint64 // VmHWM (peak RSS) of the process since resetHWM, 0 if unknown
	HWMReset bool   // whether VmHWM was reset at the start (else it is the process's lifetime peak)
}

func (h *heapSampler) Stop() heapStats {
	close(h.stop)
	<-h.done
	hwm, _ := vmHWM()
	return heapStats{Baseline: h.baseline, Peak: h.peak.Load(), PeakWin: h.peakWin.Load(), HWM: hwm, HWMReset: hwmResettable}
}

var hwmResettable bool

// resetHWM resets the process's peak RSS (Linux: "5" to clear_refs), so that
// VmHWM afterwards is the peak of the phase measured.
func resetHWM() {
	err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	hwmResettable = err == nil
}

// vmHWM reads the peak resident set size from /proc/self/status.
func vmHWM() (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, false
			}
			return kb << 10, true
		}
	}
	return 0, false
}

// probeLake wraps a lake and records what the engine does with it: bytes
// written, and when partition files are created and closed, so that a merge
// can be timed from outside the engine. It keeps the optional Appender and
// Copier abilities of the lake it wraps.
type probeLake struct {
	lakelink.Lake
	isPartition func(path string) bool
	window      *atomic.Bool // set while any partition file is open for writing

	mu        sync.Mutex
	written   int64 // bytes through Create and Append writers
	copied    int64 // bytes through Copy (snapshots)
	creates   map[string]int
	openParts int
	firstOpen time.Time // the first partition Create since reset
	lastClose time.Time // the last partition Close since reset
	copyTime  time.Duration
	partBytes int64 // bytes written to partition files

	// onState, when set, is called with the bytes of every state record
	// whose Close returned nil, and when it returned: the instant the
	// engine's commit became durable.
	onState func(at time.Time, state []byte)
}

func newProbeLake(l lakelink.Lake, isPartition func(string) bool) *probeLake {
	return &probeLake{Lake: l, isPartition: isPartition, window: &atomic.Bool{}, creates: map[string]int{}}
}

// reset forgets everything recorded so far.
func (p *probeLake) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.written, p.copied, p.partBytes = 0, 0, 0
	p.creates = map[string]int{}
	p.firstOpen, p.lastClose = time.Time{}, time.Time{}
	p.copyTime = 0
}

// probeStats is a copy of what a probeLake recorded.
type probeStats struct {
	Written, Copied, PartBytes int64
	Creates                    map[string]int // partition path -> Create calls
	FirstOpen, LastClose       time.Time
	CopyTime                   time.Duration
}

func (p *probeLake) stats() probeStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := map[string]int{}
	for k, v := range p.creates {
		c[k] = v
	}
	return probeStats{Written: p.written, Copied: p.copied, PartBytes: p.partBytes, Creates: c,
		FirstOpen: p.firstOpen, LastClose: p.lastClose, CopyTime: p.copyTime}
}

// Partitions returns how many partition files were written.
func (s probeStats) Partitions() int { return len(s.Creates) }

// Window is the time from the first partition Create to the last Close.
func (s probeStats) Window() time.Duration {
	if s.FirstOpen.IsZero() || s.LastClose.IsZero() {
		return 0
	}
	return s.LastClose.Sub(s.FirstOpen)
}

func (p *probeLake) Create(ctx context.Context, path string) (io.WriteCloser, error) {
	part := p.isPartition(path)
	if part {
		p.mu.Lock()
		p.creates[path]++
		if p.firstOpen.IsZero() {
			p.firstOpen = time.Now()
		}
		p.openParts++
		p.window.Store(true)
		p.mu.Unlock()
	}
	w, err := p.Lake.Create(ctx, path)
	if err != nil {
		if part {
			p.closed(false)
		}
		return nil, err
	}
	pw := &probeWriter{w: w, p: p, part: part}
	if path == export.StatePath && p.onState != nil {
		pw.state = &bytes.Buffer{}
	}
	return pw, nil
}

func (p *probeLake) closed(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.openParts--
	if p.openParts == 0 {
		p.window.Store(false)
	}
	if ok {
		p.lastClose = time.Now()
	}
}

func (p *probeLake) Append(ctx context.Context, path string, size int64) (io.WriteCloser, error) {
	a, ok := p.Lake.(lakelink.Appender)
	if !ok {
		return nil, errNoAppend
	}
	w, err := a.Append(ctx, path, size)
	if err != nil {
		return nil, err
	}
	return &probeWriter{w: w, p: p}, nil
}

func (p *probeLake) Copy(ctx context.Context, src, dst string, n int64) error {
	c, ok := p.Lake.(lakelink.Copier)
	if !ok {
		return errNoCopy
	}
	start := time.Now()
	err := c.Copy(ctx, src, dst, n)
	p.mu.Lock()
	p.copyTime += time.Since(start)
	if err == nil {
		p.copied += n
	}
	p.mu.Unlock()
	return err
}

type probeWriter struct {
	w     io.WriteCloser
	p     *probeLake
	part  bool
	done  bool
	state *bytes.Buffer // a copy of a state record's bytes, for onState
}

func (w *probeWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	if w.state != nil {
		w.state.Write(b[:n])
	}
	w.p.mu.Lock()
	w.p.written += int64(n)
	if w.part {
		w.p.partBytes += int64(n)
	}
	w.p.mu.Unlock()
	return n, err
}

func (w *probeWriter) Close() error {
	err := w.w.Close()
	if w.state != nil && err == nil {
		w.p.onState(time.Now(), w.state.Bytes())
		w.state = nil
	}
	if w.part && !w.done {
		w.done = true
		w.p.closed(err == nil)
	}
	return err
}

var (
	errNoAppend = errors.New("bench: the wrapped lake can't append")
	errNoCopy   = errors.New("bench: the wrapped lake can't copy")
)
