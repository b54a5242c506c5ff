package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/lake/azure"
	"github.com/lakelink/lakelink/lake/file"
	"github.com/lakelink/lakelink/lake/s3"
)

// lakeBucket is the Azure container and S3 bucket of set 4; each run
// writes under a prefix of its own and deletes its objects at the end.
const lakeBucket = "lakelink-bench"

// lakeResult is set 4 for one lake and partition size.
type lakeResult struct {
	kind      string
	mb        int           // the partition's size asked for, in MB
	partBytes int64         // the partition's size before the appends
	create    time.Duration // writing the partition (setup)
	append    time.Duration // the fastest append commit
	added     int64         // bytes of one commit's rows (the most of any round)
	calls     traffic       // the client's requests of the round that sent the most (object lakes)
	other     traffic       // requests by others in that round, e.g. the server fetching a copy source
	proxied   bool
	// split is the lake's SplitSize when the partition is past it: the
	// engine then appends to the partition's last overflow split, and
	// partBytes is that file's size (the full splits before it are not
	// touched by a commit, so they are not written here).
	split int64
}

// benchLake is one lake of set 4, opened behind a counting proxy when it
// is an object store.
type benchLake struct {
	kind  string
	lake  lakelink.Lake
	proxy *countingProxy // nil for the local folder
	where string         // for the output
}

// lakeBench is set 4: the cost of one append-only commit into partitions
// of each size of -lake-sizes, on each lake of -lake-kinds, through the
// lake packages directly (the engine's append is one Appender.Append,
// Write and Close per partition).
func lakeBench(ctx context.Context, r *report, o options, dir string, logger *slog.Logger) error {
	r.section(fmt.Sprintf("4. Object lakes: one append-only commit of %s rows into partitions of %s MB", count(o.lakeRows), joinInts(o.lakeSizes)))
	r.printf("Through the lake packages directly (lake/file, lake/azure, lake/s3; no engine): the partition is written with Create, then\n")
	r.printf("each commit is Appender.Append(path, committed size), Write of the rows, Close: what the engine does per partition\n")
	r.printf("in append-only mode. Object stores sit behind a counting HTTP proxy on loopback (requests, body bytes).\n")
	var errs []error
	for _, kind := range o.lakeKinds {
		bl, err := openBenchLake(ctx, kind, filepath.Join(dir, "lake-append"))
		if err != nil {
			r.printf("%s: unavailable: %v\n", kind, err)
			errs = append(errs, fmt.Errorf("%s: %w", kind, err))
			continue
		}
		r.printf("%s: %s\n", kind, bl.where)
		for _, mb := range o.lakeSizes {
			res, err := appendOne(ctx, o, bl, mb)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s, %d MB: %w", kind, mb, err))
				r.printf("  %d MB: failed: %v\n", mb, err)
				break
			}
			r.lakes = append(r.lakes, res)
			r.printf("  %d MB: partition written in %s, append %s\n", mb, dur(res.create), durMS(res.append))
			if res.split > 0 {
				r.printf("    past %d MiB the engine continues a partition in overflow splits (<partition>_001.csv ...): the commit appends to the last one, %.1f MB\n", res.split>>20, float64(res.partBytes)/1e6)
			}
		}
		bl.Close()
	}
	r.lakeTable(o)
	return errors.Join(errs...)
}

func openBenchLake(ctx context.Context, kind, dir string) (*benchLake, error) {
	prefix := "run-" + randHex(4)
	switch kind {
	case "file":
		d := filepath.Join(dir, prefix)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		l, err := file.Open(ctx, d)
		if err != nil {
			return nil, err
		}
		return &benchLake{kind: kind, lake: l, where: "file://" + d}, nil
	case "azure":
		endpoint, account, key := os.Getenv(azure.EnvEndpoint), os.Getenv("AZURE_STORAGE_ACCOUNT"), os.Getenv("AZURE_STORAGE_KEY")
		if endpoint == "" || account == "" || key == "" {
			return nil, errors.New("set AZURE_BLOB_ENDPOINT, AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY (`. ci/services.sh; AZ_PORT=55442 azurite_start` starts Azurite)")
		}
		p, err := startProxy(endpoint)
		if err != nil {
			return nil, err
		}
		cfg := azure.Config{Account: account, Container: lakeBucket, Prefix: prefix, Endpoint: p.URL + "/" + account, Key: azure.Secret(key)}
		if err := azure.CreateContainer(ctx, cfg); err != nil {
			p.Close()
			return nil, err
		}
		l, err := azure.Open(ctx, cfg)
		if err != nil {
			p.Close()
			return nil, err
		}
		return &benchLake{kind: kind, lake: l, proxy: p, where: fmt.Sprintf("%s (Azurite at %s, through %s)", cfg, endpoint, p.URL)}, nil
	case "s3":
		endpoint := os.Getenv("S3_ENDPOINT")
		if endpoint == "" || os.Getenv("AWS_ACCESS_KEY_ID") == "" {
			return nil, errors.New("set S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (`. ci/services.sh; S3_PORT=55443 s3_start` starts versitygw)")
		}
		p, err := startProxy(endpoint)
		if err != nil {
			return nil, err
		}
		cfg := s3.Config{Bucket: lakeBucket, Prefix: prefix, Endpoint: p.URL, PathStyle: true, Region: os.Getenv("AWS_REGION")}
		if err := s3.CreateBucket(ctx, cfg); err != nil {
			p.Close()
			return nil, err
		}
		l, err := s3.Open(ctx, cfg)
		if err != nil {
			p.Close()
			return nil, err
		}
		return &benchLake{kind: kind, lake: l, proxy: p, where: fmt.Sprintf("%s (versitygw at %s, through %s)", cfg, endpoint, p.URL)}, nil
	}
	return nil, fmt.Errorf("unknown lake kind %q", kind)
}

func (b *benchLake) Close() {
	b.lake.Close()
	if b.proxy != nil {
		b.proxy.Close()
	}
}

// appendOne writes a partition of mb MB, then appends -lake-repeat
// commits of -lake-rows rows to it, keeping the fastest; the partition is
// deleted afterwards.
func appendOne(ctx context.Context, o options, bl *benchLake, mb int) (lakeResult, error) {
	res := lakeResult{kind: bl.kind, mb: mb, proxied: bl.proxy != nil}
	path := fmt.Sprintf("t/%dMB/2020.csv", mb)
	defer bl.lake.Delete(context.WithoutCancel(ctx), path)
	ap, ok := bl.lake.(lakelink.Appender)
	if !ok {
		return res, fmt.Errorf("the %s lake can't append", bl.kind)
	}

	want := int64(mb) * 1_000_000
	if sz, ok := bl.lake.(interface{ SplitSize() int64 }); ok && want > sz.SplitSize() {
		res.split = sz.SplitSize()
		if want %= res.split; want == 0 {
			want = res.split
		}
	}
	start := time.Now()
	w, err := bl.lake.Create(ctx, path)
	if err != nil {
		return res, err
	}
	gen := &rowGen{}
	n, err := io.Copy(w, io.LimitReader(gen, want))
	if err != nil {
		w.Close()
		return res, fmt.Errorf("write the partition: %w", err)
	}
	if err := w.Close(); err != nil {
		return res, fmt.Errorf("write the partition: %w", err)
	}
	res.create, res.partBytes = time.Since(start), n

	size := n
	for i := 0; i < o.lakeRepeat; i++ {
		rows := gen.rows(o.lakeRows)
		if bl.proxy != nil {
			bl.proxy.reset()
		}
		start := time.Now()
		a, err := ap.Append(ctx, path, size)
		if err != nil {
			return res, fmt.Errorf("append at %d: %w", size, err)
		}
		if _, err := a.Write(rows); err != nil {
			a.Close()
			return res, fmt.Errorf("append at %d: %w", size, err)
		}
		if err := a.Close(); err != nil {
			return res, fmt.Errorf("append at %d: %w", size, err)
		}
		took := time.Since(start)
		size += int64(len(rows))
		if res.append == 0 || took < res.append {
			res.append = took
		}
		res.added = max(res.added, int64(len(rows)))
		// Traffic: the round that sent the most. A round after a small
		// append re-sends that append's bytes on Azure (a last block under
		// 1 MiB is read back and staged again with the new rows), so
		// rounds differ, by the round's number, not the partition's size.
		if bl.proxy != nil {
			if calls, other := bl.proxy.counts(); calls.Sent > res.calls.Sent || (calls.Sent == res.calls.Sent && calls.Requests > res.calls.Requests) {
				res.calls, res.other = calls, other
			}
		}
	}
	// The appends must have landed: the object is the partition plus them.
	info, err := bl.lake.Stat(ctx, path)
	if err != nil {
		return res, err
	}
	if info.Size != size {
		return res, fmt.Errorf("after the appends the object has %d bytes, want %d", info.Size, size)
	}
	return res, nil
}

// rowGen generates partition rows in lakelink's append-only CSV shape:
// about 190 bytes each, ids counting up.
type rowGen struct {
	id  int
	buf []byte
}

func (g *rowGen) appendRow(b []byte) []byte {
	g.id++
	i := g.id
	b = fmt.Appendf(b, "\"%08x-0000-4000-8000-%012x\",\"2020-06-01T00:00:00.0000000Z\",\"2020-06-01T00:00:00.0000000Z\",%d,\"False\",%d,\"customer %d\",%d.25,%d,\"2020-03-04T05:06:07.0000000Z\",\"plain note %d\"\n",
		i, i, 1000+i, i, i, i%100000, i*7919%1000, i%97)
	return b
}

// Read fills p with rows; the last row of a LimitReader may be cut.
func (g *rowGen) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) {
		g.buf = g.appendRow(g.buf)
	}
	n := copy(p, g.buf)
	g.buf = g.buf[:copy(g.buf, g.buf[n:])]
	return n, nil
}

// rows returns n whole rows.
func (g *rowGen) rows(n int) []byte {
	var b []byte
	for range n {
		b = g.appendRow(b)
	}
	return b
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func joinInts(ns []int) string {
	s := ""
	for i, n := range ns {
		if i > 0 {
			s += " and "
		}
		s += strconv.Itoa(n)
	}
	return s
}
