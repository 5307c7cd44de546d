package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ReloadCheck is how often Keys looks at its files for a change: the delay
// before a rotated certificate or a revocation takes effect.
const ReloadCheck = time.Second

// Keys is a program's trust material, loaded from its Files and reloaded
// when a file changes (checked at most every ReloadCheck, on a handshake).
// A reload that fails (a key that does not match its certificate because
// only one of them was written yet) keeps the last good material and is
// retried at the next check. Safe for concurrent use.
type Keys struct {
	files Files

	mu        sync.Mutex
	checked   time.Time
	stamps    [4]stamp
	cur       *material
	reloadErr error
	reloads   int
}

type material struct {
	cert    tls.Certificate
	leaf    *x509.Certificate
	id      Identity
	roots   *x509.CertPool
	revoked map[string]bool // serials, hex
}

type stamp struct {
	mod  time.Time
	size int64
}

// Load loads files (which must be Enabled and valid).
func Load(files Files) (*Keys, error) {
	if err := files.Validate(); err != nil {
		return nil, err
	}
	if !files.Enabled() {
		return nil, errors.New("pki: no files to load")
	}
	k := &Keys{files: files}
	m, stamps, err := k.load()
	if err != nil {
		return nil, err
	}
	k.cur, k.stamps, k.checked = m, stamps, time.Now()
	return k, nil
}

// LoadIfEnabled is Load, or nil for no files: how a program that may run
// without TLS loads its keys.
func LoadIfEnabled(files Files) (*Keys, error) {
	if !files.Enabled() {
		return nil, nil
	}
	return Load(files)
}

// Identity is who this program's certificate names.
func (k *Keys) Identity() Identity { return k.current().id }

// Reloads is how many times the material was reloaded after a change, and
// the last reload's error (nil when the last one succeeded).
func (k *Keys) Reloads() (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloads, k.reloadErr
}

// current returns the material, reloading it first if a file changed.
func (k *Keys) current() *material {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.checked) < ReloadCheck {
		return k.cur
	}
	k.checked = time.Now()
	stamps := k.stampFiles()
	if stamps == k.stamps {
		return k.cur
	}
	m, stamps, err := k.load()
	k.reloadErr = err
	if err == nil {
		k.cur, k.stamps = m, stamps
		k.reloads++
	}
	return k.cur
}

func (k *Keys) paths() [4]string {
	return [4]string{k.files.CA, k.files.Cert, k.files.Key, k.files.CRL}
}

func (k *Keys) stampFiles() [4]stamp {
	var s [4]stamp
	for i, p := range k.paths() {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			s[i] = stamp{fi.ModTime(), fi.Size()}
		}
	}
	return s
}

// load reads every file; the stamps are taken first, so a change made
// while reading is seen at the next check.
func (k *Keys) load() (*material, [4]stamp, error) {
	stamps := k.stampFiles()
	cert, err := tls.LoadX509KeyPair(k.files.Cert, k.files.Key)
	if err != nil {
		return nil, stamps, fmt.Errorf("pki: %w", err)
	}
	leaf := cert.Leaf
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, stamps, err
	}
	cas, err := readCerts(k.files.CA)
	if err != nil {
		return nil, stamps, err
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	revoked, err := readRevoked(k.files.CRL, cas)
	if err != nil {
		return nil, stamps, err
	}
	return &material{cert: cert, leaf: leaf, id: id, roots: roots, revoked: revoked}, stamps, nil
}

// readRevoked reads the serials of path's revocation lists, each checked
// against the CA that signed it.
func readRevoked(path string, cas []*x509.Certificate) (map[string]bool, error) {
	revoked := map[string]bool{}
	if path == "" {
		return revoked, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for b, rest := pem.Decode(data); b != nil; b, rest = pem.Decode(rest) {
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", path, err)
		}
		signed := false
		for _, ca := range cas {
			if crl.CheckSignatureFrom(ca) == nil {
				signed = true
				break
			}
		}
		if !signed {
			return nil, fmt.Errorf("pki: %s: revocation list signed by no trusted CA", path)
		}
		for _, e := range crl.RevokedCertificateEntries {
			revoked[e.SerialNumber.Text(16)] = true
		}
	}
	return revoked, nil
}

// ErrRevoked is the verification error of a revoked peer certificate.
var ErrRevoked = errors.New("pki: certificate revoked")

// verify checks a peer's chain against the current CAs and revocation
// list, for usage, and returns who it names.
func (m *material) verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, host string) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, errors.New("pki: peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: m.roots, Intermediates: inter, DNSName: host,
		KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return Identity{}, fmt.Errorf("pki: %w", err)
	}
	if m.revoked[chain[0].SerialNumber.Text(16)] {
		return Identity{}, fmt.Errorf("%w: %s", ErrRevoked, chain[0].Subject)
	}
	return IdentityOf(chain[0])
}

// VerifyOwn checks this program's own certificate as a peer would check
// it (chain to the current CAs, validity, revocation) and returns who it
// names: how a tool that acts as an operator proves it is one.
func (k *Keys) VerifyOwn() (Identity, error) {
	m := k.current()
	chain := m.cert.Certificate
	parsed, err := parseChain(chain)
	if err != nil {
		return Identity{}, err
	}
	return m.verify(parsed, x509.ExtKeyUsageClientAuth, "")
}
