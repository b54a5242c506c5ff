package azure

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/lakelink/lakelink"
)

// The environment variables Open reads for what a Config leaves empty.
const (
	EnvAccount          = "AZURE_STORAGE_ACCOUNT"           // the account that EnvKey is for; when set, it must match
	EnvKey              = "AZURE_STORAGE_KEY"               // an account key
	EnvConnectionString = "AZURE_STORAGE_CONNECTION_STRING" // AccountName, AccountKey, BlobEndpoint...
	EnvEndpoint         = "AZURE_BLOB_ENDPOINT"             // e.g. http://127.0.0.1:10000/devstoreaccount1/ for Azurite
)

// Config says which container, and where in it, a Lake writes, and how it
// authenticates.
type Config struct {
	Account   string // storage account name
	Container string // container (file system) name
	Prefix    string // folder in the container, without leading or trailing slash; may be empty

	// Endpoint is the blob service URL, such as
	// http://127.0.0.1:10000/devstoreaccount1 for an emulator. Empty means
	// https://ACCOUNT.blob.core.windows.net, unless the environment or the
	// connection string gives one.
	Endpoint string

	// Key is an account key. Empty: Open takes it from the environment
	// (AZURE_STORAGE_KEY, then AZURE_STORAGE_CONNECTION_STRING) or, failing
	// those, uses Credential.
	Key Secret
	// ConnectionString is an Azure Storage connection string; empty: Open
	// reads AZURE_STORAGE_CONNECTION_STRING. Only one naming Account is used.
	ConnectionString Secret
	// ReadOnly makes Open probe by listing rather than by a write and a
	// delete, so a reader-only identity can open the lake, and makes every
	// write fail: for commands that only read (status, check).
	ReadOnly bool

	// Credential is used when no account key is found. Nil: the Azure SDK's
	// default credential chain (environment, workload identity, managed
	// identity, Azure CLI...).
	Credential azcore.TokenCredential
}

// Secret is a string that fmt never prints, so a Config can be logged.
type Secret string

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// String returns the lake's URL, without credentials.
func (c Config) String() string {
	s := "azure://" + c.Account + "/" + c.Container
	if c.Prefix != "" {
		s += "/" + c.Prefix
	}
	if c.Endpoint != "" {
		s += "?endpoint=" + strings.TrimSuffix(c.Endpoint, "/")
	}
	return s
}

// ParseURL parses a lake URL of the form
//
//	azure://ACCOUNT/CONTAINER[/PREFIX][?endpoint=URL]
//
// It reads only the URL: credentials, and an endpoint the URL does not
// give, come from the environment when the lake is opened (see Open). A URL
// that holds credentials (user info, a SAS) is refused, without echoing it.
func ParseURL(u string) (Config, error) {
	if !strings.HasPrefix(u, "azure://") {
		scheme, _, ok := strings.Cut(u, "://")
		if !ok {
			return Config{}, errors.New(`azure: lake URL has no scheme; write azure://ACCOUNT/CONTAINER[/PREFIX]`)
		}
		return Config{}, fmt.Errorf("azure: lake URL scheme %q is not azure; write azure://ACCOUNT/CONTAINER[/PREFIX]", scheme)
	}
	p, err := url.Parse(u)
	if err != nil {
		// url.Error repeats the URL, which may hold a secret.
		return Config{}, errors.New("azure: lake URL does not parse; write azure://ACCOUNT/CONTAINER[/PREFIX]")
	}
	if p.User != nil {
		return Config{}, fmt.Errorf("azure: lake URL holds credentials; remove them and set %s or %s instead", EnvKey, EnvConnectionString)
	}
	if p.Fragment != "" {
		return Config{}, errors.New("azure: lake URL has a fragment (#...); write azure://ACCOUNT/CONTAINER[/PREFIX]")
	}
	c := Config{Account: p.Host}
	if err := checkAccount(c.Account); err != nil {
		return Config{}, err
	}
	rest := strings.TrimPrefix(p.Path, "/")
	c.Container, c.Prefix, _ = strings.Cut(rest, "/")
	if err := checkContainer(c.Container); err != nil {
		return Config{}, err
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	if c.Prefix != "" {
		if err := lakelink.CheckPath(c.Prefix); err != nil {
			return Config{}, fmt.Errorf("azure: lake URL prefix: %w", err)
		}
	}
	q := p.Query()
	for k := range q {
		if k != "endpoint" {
			return Config{}, fmt.Errorf("azure: lake URL parameter %q not supported; the only one is endpoint (credentials come from %s or %s)", k, EnvKey, EnvConnectionString)
		}
	}
	if vs := q["endpoint"]; len(vs) > 0 {
		if len(vs) > 1 {
			return Config{}, errors.New("azure: lake URL gives endpoint twice")
		}
		if c.Endpoint, err = checkEndpoint(vs[0]); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// checkAccount checks a storage account name: 3 to 24 lower-case letters
// and digits.
func checkAccount(a string) error {
	if a == "" {
		return errors.New("azure: lake URL has no account; write azure://ACCOUNT/CONTAINER[/PREFIX]")
	}
	if len(a) < 3 || len(a) > 24 || strings.IndexFunc(a, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) >= 0 {
		return fmt.Errorf("azure: account name %q is not valid: 3 to 24 lower-case letters and digits", a)
	}
	return nil
}

// checkContainer checks a container name: 3 to 63 lower-case letters,
// digits and hyphens, starting and ending with a letter or digit, no two
// hyphens in a row.
func checkContainer(c string) error {
	if c == "" {
		return errors.New("azure: lake URL has no container; write azure://ACCOUNT/CONTAINER[/PREFIX]")
	}
	ok := len(c) >= 3 && len(c) <= 63 && c[0] != '-' && c[len(c)-1] != '-' && !strings.Contains(c, "--") &&
		strings.IndexFunc(c, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) < 0
	if !ok {
		return fmt.Errorf("azure: container name %q is not valid: 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit", c)
	}
	return nil
}

// checkEndpoint checks a blob service URL and returns it without a
// trailing slash.
func checkEndpoint(e string) (string, error) {
	p, err := url.Parse(e)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", errors.New("azure: endpoint is not an http(s) URL; give the blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1")
	}
	if p.User != nil || p.RawQuery != "" || p.Fragment != "" {
		return "", fmt.Errorf("azure: endpoint must be a plain URL, without credentials or query; set %s or %s for credentials", EnvKey, EnvConnectionString)
	}
	return strings.TrimSuffix(p.String(), "/"), nil
}

// resolved is a Config with the environment applied.
type resolved struct {
	Config
	serviceURL string // blob service URL, ending in "/"
	credFrom   string // where the credential came from, for error hints
}

// resolve fills what cfg leaves empty from the environment, and checks it.
func resolve(cfg Config) (resolved, error) {
	if err := checkAccount(cfg.Account); err != nil {
		return resolved{}, err
	}
	if err := checkContainer(cfg.Container); err != nil {
		return resolved{}, err
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	if cfg.Prefix != "" {
		if err := lakelink.CheckPath(cfg.Prefix); err != nil {
			return resolved{}, fmt.Errorf("azure: prefix: %w", err)
		}
	}
	r := resolved{Config: cfg}
	// AZURE_BLOB_ENDPOINT and AZURE_STORAGE_KEY are for the account
	// AZURE_STORAGE_ACCOUNT names, or any when it is unset.
	envAccount := os.Getenv(EnvAccount) == "" || os.Getenv(EnvAccount) == cfg.Account
	if r.Endpoint == "" && envAccount {
		r.Endpoint = os.Getenv(EnvEndpoint)
	}
	if r.Key != "" {
		r.credFrom = "the configured account key"
	} else if k := os.Getenv(EnvKey); k != "" && envAccount {
		r.Key, r.credFrom = Secret(k), EnvKey
	}
	cs, csFrom := r.ConnectionString, "the configured connection string"
	if cs == "" {
		cs, csFrom = Secret(os.Getenv(EnvConnectionString)), EnvConnectionString
	}
	if cs != "" {
		m, err := parseConnectionString(string(cs))
		if err != nil {
			return resolved{}, fmt.Errorf("azure: %s: %w", csFrom, err)
		}
		if m["AccountName"] == cfg.Account {
			if r.Key == "" && m["AccountKey"] != "" {
				r.Key, r.credFrom = Secret(m["AccountKey"]), csFrom
			}
			if r.Endpoint == "" && m["BlobEndpoint"] != "" {
				r.Endpoint = m["BlobEndpoint"]
			}
		}
	}
	if r.Key == "" {
		r.credFrom = "the default Azure credential chain (no " + EnvKey + " or " + EnvConnectionString + " for account " + cfg.Account + ")"
		if r.Credential != nil {
			r.credFrom = "the configured token credential"
		}
	}
	if r.Endpoint != "" {
		e, err := checkEndpoint(r.Endpoint)
		if err != nil {
			return resolved{}, err
		}
		r.Endpoint = e
		r.serviceURL = e + "/"
	} else {
		r.serviceURL = "https://" + cfg.Account + ".blob.core.windows.net/"
	}
	return r, nil
}

// parseConnectionString splits "k=v;k=v" into a map. Its errors never
// repeat the string.
func parseConnectionString(s string) (map[string]string, error) {
	m := map[string]string{}
	for part := range strings.SplitSeq(strings.TrimRight(s, ";"), ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, errors.New("connection string does not parse: want Key=Value pairs separated by ';'")
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, nil
}
