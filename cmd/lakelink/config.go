package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lakelink/lakelink"
)

// Config is a lakelink config file, for "lakelink run --config FILE":
//
//	links:
//	  - name: crm
//	    source: sqlite:///srv/crm.db
//	    lake: file:///srv/lake/crm
//	    tables:
//	      - name: account
//	        mode: in-place
//	        partition: month
//	        createdon: created_at
//	    commit_interval: 1s
//	    snapshot_interval: 1h
//	    snapshot_retention: 5
//
// ${VAR} in a string value is replaced with the environment variable VAR
// after the file is parsed, so an environment value can't change the file's
// structure. See docs/configuration.md.
type Config struct {
	Links []LinkConfig `yaml:"links"`
}

// LinkConfig is one link of a Config. Without tables, every table of the
// source that can be linked is exported.
type LinkConfig struct {
	lakelink.Link `yaml:",inline"`
	// CommitInterval is how long changes are batched before a commit, as
	// a Go duration ("1s", "500ms").
	CommitInterval string `yaml:"commit_interval,omitempty"`
	// SnapshotInterval is how often snapshots are taken ("1h").
	SnapshotInterval string `yaml:"snapshot_interval,omitempty"`
	// SnapshotRetention is how many snapshot generations of each partition
	// are kept.
	SnapshotRetention int `yaml:"snapshot_retention,omitempty"`
	// TableScanInterval is how often a link without tables looks for
	// tables the source has gained, to add them while it runs ("10s";
	// "0s": never).
	TableScanInterval string `yaml:"table_scan_interval,omitempty"`
}

// linkSpec is one link ready to run, from a Config or from flags.
type linkSpec struct {
	lakelink.Link
	Defaults          lakelink.TableSettings // settings for tables the link does not name
	CommitInterval    time.Duration
	SnapshotInterval  time.Duration
	SnapshotRetention int
	TableScanInterval time.Duration // negative: never
}

// Defaults of a link.
const (
	defaultLink              = "default"
	defaultCommitInterval    = time.Second
	defaultSnapshotInterval  = time.Hour
	defaultSnapshotRetention = 5
	defaultTableScanInterval = 10 * time.Second
)

// loadConfig reads, expands, defaults and validates a config file.
func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parseConfig(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// parseConfig parses a config file's content, expands ${VAR} in its string
// values with lookup, sets defaults and validates it. An error names the
// field: "links[0].lake: scheme "ftp" not supported".
func parseConfig(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty; it needs a links: list")
		}
		return nil, err
	}
	if err := expandEnv(reflect.ValueOf(&c).Elem(), "", lookup); err != nil {
		return nil, err
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${VAR} in every string field under v. A variable that
// is not set is an error naming the field: a config that silently loses its
// password or path is worse than one that does not start.
func expandEnv(v reflect.Value, field string, lookup func(string) (string, bool)) error {
	switch v.Kind() {
	case reflect.String:
		var missing string
		s := envRef.ReplaceAllStringFunc(v.String(), func(ref string) string {
			name := ref[2 : len(ref)-1]
			val, ok := lookup(name)
			if !ok && missing == "" {
				missing = name
			}
			return val
		})
		if missing != "" {
			return fmt.Errorf("%s: environment variable %s is not set", field, missing)
		}
		v.SetString(s)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := yamlName(f)
			sub := field
			if name != "" {
				sub = joinField(field, name)
			}
			if err := expandEnv(v.Field(i), sub, lookup); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if err := expandEnv(v.Index(i), fmt.Sprintf("%s[%d]", field, i), lookup); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlName is a struct field's name in YAML, or "" for an inline field.
func yamlName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	name, opts, _ := strings.Cut(tag, ",")
	if opts == "inline" || f.Anonymous && name == "" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// setDefaults fills every empty field with its default. It is the one place
// the config's defaults live.
func (c *Config) setDefaults() {
	for i := range c.Links {
		l := &c.Links[i]
		if l.Name == "" && len(c.Links) == 1 {
			l.Name = defaultLink
		}
		if l.CommitInterval == "" {
			l.CommitInterval = defaultCommitInterval.String()
		}
		if l.SnapshotInterval == "" {
			l.SnapshotInterval = defaultSnapshotInterval.String()
		}
		if l.SnapshotRetention == 0 {
			l.SnapshotRetention = defaultSnapshotRetention
		}
		if l.TableScanInterval == "" {
			l.TableScanInterval = defaultTableScanInterval.String()
		}
	}
}

// validate checks the config after setDefaults; an error names the field.
func (c *Config) validate() error {
	if len(c.Links) == 0 {
		return errors.New("links: no links; add at least one with a source and a lake")
	}
	names := map[string]int{}
	lakes := map[endpoint]int{}
	for i, l := range c.Links {
		at := fmt.Sprintf("links[%d]", i)
		if err := lakelink.CheckLinkName(l.Name); err != nil {
			return fmt.Errorf("%s.name: %w", at, err)
		}
		if j, dup := names[l.Name]; dup {
			return fmt.Errorf("%s.name: %q is also the name of links[%d]", at, l.Name, j)
		}
		names[l.Name] = i
		if _, err := parseSource(l.Source); err != nil {
			return fmt.Errorf("%s.source: %w", at, err)
		}
		ep, err := parseLake(l.Lake)
		if err != nil {
			return fmt.Errorf("%s.lake: %w", at, err)
		}
		if j, dup := lakes[ep]; dup {
			return fmt.Errorf("%s.lake: links[%d] exports into the same lake; each link needs a lake of its own", at, j)
		}
		lakes[ep] = i
		tables := map[string]int{}
		for j, t := range l.Tables {
			tat := fmt.Sprintf("%s.tables[%d]", at, j)
			if t.Name == "" {
				return fmt.Errorf("%s.name: empty", tat)
			}
			if k, dup := tables[t.Name]; dup {
				return fmt.Errorf("%s.name: table %q is also %s.tables[%d]", tat, t.Name, at, k)
			}
			tables[t.Name] = j
			if err := lakelink.CheckMode(t.Mode); err != nil {
				return fmt.Errorf("%s.mode: %w", tat, err)
			}
			if err := lakelink.CheckPartition(t.Partition); err != nil {
				return fmt.Errorf("%s.partition: %w", tat, err)
			}
		}
		if d, err := time.ParseDuration(l.CommitInterval); err != nil || d <= 0 {
			return fmt.Errorf("%s.commit_interval: %q is not a positive duration such as 1s or 500ms", at, l.CommitInterval)
		}
		if d, err := time.ParseDuration(l.SnapshotInterval); err != nil || d <= 0 {
			return fmt.Errorf("%s.snapshot_interval: %q is not a positive duration such as 1h or 15m", at, l.SnapshotInterval)
		}
		if d, err := time.ParseDuration(l.TableScanInterval); err != nil || d < 0 {
			return fmt.Errorf("%s.table_scan_interval: %q is not a duration such as 10s, or 0s for never", at, l.TableScanInterval)
		}
		if l.SnapshotRetention < 1 {
			return fmt.Errorf("%s.snapshot_retention: %d; keep at least 1 generation", at, l.SnapshotRetention)
		}
	}
	return nil
}

// scanInterval turns a user's table scan interval (0: never) into
// export.Config's (negative: never).
func scanInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// specs returns the links of a validated config, ready to run.
func (c *Config) specs() []linkSpec {
	specs := make([]linkSpec, 0, len(c.Links))
	for _, l := range c.Links {
		ci, _ := time.ParseDuration(l.CommitInterval)
		si, _ := time.ParseDuration(l.SnapshotInterval)
		scan, _ := time.ParseDuration(l.TableScanInterval)
		specs = append(specs, linkSpec{Link: l.Link, CommitInterval: ci, SnapshotInterval: si, SnapshotRetention: l.SnapshotRetention, TableScanInterval: scanInterval(scan)})
	}
	return specs
}
