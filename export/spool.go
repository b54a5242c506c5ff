package export

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lakelink/lakelink"
)

func init() {
	// The Go types a Value holds besides gob's basic ones (string, int64,
	// float64, bool, []byte).
	gob.Register(time.Time{})
	gob.Register(lakelink.BadValue{})
}

// spool keeps a run of changes in a local temporary file, in order, so
// that memory does not grow with how many there are: the changes of a table
// whose initial copy runs in the background wait there until the copy is
// done. gob keeps every value exactly (floats bit for bit, times with their
// offset, NULL apart from the empty string).
type spool struct {
	f   *os.File
	bw  *bufio.Writer
	enc *gob.Encoder
	n   int // changes added
}

// newSpool creates a spool file in dir (the system's temporary folder when
// dir is empty).
func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "lakelink-spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &spool{f: f}
	s.bw = bufio.NewWriterSize(f, 256<<10)
	s.enc = gob.NewEncoder(s.bw)
	return s, nil
}

// add appends a change.
func (s *spool) add(c lakelink.Change) error {
	if err := s.enc.Encode(&c); err != nil {
		return fmt.Errorf("spool %s: %w", s.f.Name(), err)
	}
	s.n++
	return nil
}

// replay calls fn with every change added, in order.
func (s *spool) replay(fn func(lakelink.Change) error) error {
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("spool %s: %w", s.f.Name(), err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool %s: %w", s.f.Name(), err)
	}
	dec := gob.NewDecoder(bufio.NewReaderSize(s.f, 256<<10))
	for i := 0; i < s.n; i++ {
		var c lakelink.Change
		if err := dec.Decode(&c); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("spool %s: change %d of %d: %w", s.f.Name(), i+1, s.n, err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// close removes the spool file.
func (s *spool) close() {
	s.f.Close()
	os.Remove(s.f.Name())
}
