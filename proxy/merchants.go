package proxy

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"

	"tradeunit"
)

// Merchant is a merchant allowed to call the API, with its API key.
type Merchant struct {
	Mchid  string `json:"mchid"`
	APIKey string `json:"api_key"`
}

// Credentials is the merchants file: {"merchants":[{"mchid","api_key"}]}.
type Credentials struct {
	Merchants []Merchant `json:"merchants"`
}

// LoadCredentials reads and checks a merchants file.
func LoadCredentials(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read merchants file: %w", err)
	}
	var c Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("parse merchants file %s: %w", path, err)
	}
	if _, err := c.index(); err != nil {
		return nil, fmt.Errorf("merchants file %s: %w", path, err)
	}
	return &c, nil
}

// minKeyLen keeps keys long enough not to be guessed.
const minKeyLen = 16

// index maps the SHA-256 of each API key to its merchant, so that looking a
// key up does not compare secrets byte by byte.
func (c *Credentials) index() (map[[32]byte]string, error) {
	idx := map[[32]byte]string{}
	seen := map[string]bool{}
	for _, m := range c.Merchants {
		if err := tradeunit.ValidateMchid(m.Mchid); err != nil {
			return nil, err
		}
		if tradeunit.IsProbe(m.Mchid) {
			return nil, fmt.Errorf("merchant %s is reserved for the health checker's probe orders", m.Mchid)
		}
		if len(m.APIKey) < minKeyLen {
			return nil, fmt.Errorf("merchant %s: api_key must be at least %d characters", m.Mchid, minKeyLen)
		}
		h := sha256.Sum256([]byte(m.APIKey))
		if _, dup := idx[h]; dup {
			return nil, fmt.Errorf("merchant %s: api_key is shared with another merchant", m.Mchid)
		}
		if seen[m.Mchid] {
			return nil, fmt.Errorf("merchant %s is listed twice", m.Mchid)
		}
		seen[m.Mchid] = true
		idx[h] = m.Mchid
	}
	return idx, nil
}
