package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The files of a CA directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key" // 0600; only the operator issuing certificates needs it
	CRLFile    = "ca.crl"
)

// CA is a certificate authority kept in a directory: its certificate, its
// key and its revocation list.
type CA struct {
	Cert *x509.Certificate
	key  crypto.Signer
	dir  string
}

// DefaultCAValidity is how long a CA made by InitCA is valid.
const DefaultCAValidity = 10 * 365 * 24 * time.Hour

// InitCA makes a new CA in dir (created 0700) named name, with an empty
// revocation list. It refuses a directory that holds a CA already: a new
// CA would orphan every certificate the old one issued.
func InitCA(dir, name string) (*CA, error) {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return nil, fmt.Errorf("pki: %s holds a CA already", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(), Subject: pkix.Name{CommonName: name, Organization: []string{organization}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(DefaultCAValidity),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{Cert: cert, key: key, dir: dir}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, CACertFile), pemBlock("CERTIFICATE", der), 0o644); err != nil {
		return nil, err
	}
	return ca, ca.writeCRL(nil)
}

// OpenCA opens the CA in dir.
func OpenCA(dir string) (*CA, error) {
	certs, err := readCerts(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("pki: %s: no PEM key", filepath.Join(dir, CAKeyFile))
	}
	key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("pki: CA key cannot sign")
	}
	return &CA{Cert: certs[0], key: signer, dir: dir}, nil
}

// Dir is the CA's directory.
func (ca *CA) Dir() string { return ca.dir }

// Request is a certificate to issue.
type Request struct {
	Role Role
	Name string
	// Hosts are the DNS names and IP addresses a server holding the
	// certificate answers on; every certificate also serves as a client's.
	// None: localhost, 127.0.0.1 and ::1.
	Hosts    []string
	Validity time.Duration // 0: DefaultValidity
}

// DefaultValidity is how long an issued certificate is valid: short enough
// that rotation is a habit, long enough for a local cluster's life.
const DefaultValidity = 90 * 24 * time.Hour

// Issued is an issued certificate and its key, PEM-encoded.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Issue issues a certificate for r, signed by the CA.
func (ca *CA) Issue(r Request) (*Issued, error) {
	if !r.Role.Valid() {
		return nil, fmt.Errorf("pki: unknown role %q (want one of %v)", r.Role, Roles)
	}
	if err := checkName(r.Name); err != nil {
		return nil, err
	}
	validity := r.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	hosts := r.Hosts
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(), Subject: subject(r.Role, r.Name),
		NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: keyPEM}, nil
}

// Write writes the certificate and key as dir/base.crt and dir/base.key
// (0600), each replaced atomically, the key first, and returns the files
// a program is configured with (the CA's certificate and revocation list
// included).
func (iss *Issued) Write(ca *CA, dir, base string) (Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, err
	}
	f := Files{CA: filepath.Join(ca.dir, CACertFile), CRL: filepath.Join(ca.dir, CRLFile),
		Cert: filepath.Join(dir, base+".crt"), Key: filepath.Join(dir, base+".key")}
	if err := writeFile(f.Key, iss.KeyPEM, 0o600); err != nil {
		return Files{}, err
	}
	return f, writeFile(f.Cert, iss.CertPEM, 0o600)
}

// IssueFiles issues a certificate for r and writes it into dir, named by
// its role and name (RoleName): the one call a cluster makes per process.
func (ca *CA) IssueFiles(dir string, r Request) (Files, error) {
	iss, err := ca.Issue(r)
	if err != nil {
		return Files{}, err
	}
	return iss.Write(ca, dir, r.Name)
}

// IssueKeys is IssueFiles, loaded: the keys of a process or a test
// client the caller starts itself.
func (ca *CA) IssueKeys(dir string, r Request) (*Keys, error) {
	f, err := ca.IssueFiles(dir, r)
	if err != nil {
		return nil, err
	}
	return Load(f)
}

// Revoke adds the certificate with serial (hex) to the CA's revocation
// list. Programs configured with the list refuse it within a second.
func (ca *CA) Revoke(serial string) error {
	n, ok := new(big.Int).SetString(serial, 16)
	if !ok {
		return fmt.Errorf("pki: serial %q is not hexadecimal", serial)
	}
	crl, err := ca.RevocationList()
	if err != nil {
		return err
	}
	entries := crl.RevokedCertificateEntries
	for _, e := range entries {
		if e.SerialNumber.Cmp(n) == 0 {
			return nil
		}
	}
	return ca.writeCRL(append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: time.Now().UTC()}))
}

// RevocationList reads the CA's current revocation list.
func (ca *CA) RevocationList() (*x509.RevocationList, error) {
	data, err := os.ReadFile(filepath.Join(ca.dir, CRLFile))
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("pki: %s: no PEM revocation list", filepath.Join(ca.dir, CRLFile))
	}
	return x509.ParseRevocationList(b.Bytes)
}

func (ca *CA) writeCRL(entries []x509.RevocationListEntry) error {
	number := big.NewInt(time.Now().UnixNano())
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: number, ThisUpdate: now, NextUpdate: now.Add(DefaultCAValidity), RevokedCertificateEntries: entries,
	}, ca.Cert, ca.key)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(ca.dir, CRLFile), pemBlock("X509 CRL", der), 0o644)
}

func newSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeFile replaces path atomically, so a program reloading it never reads
// half a file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for b, rest := pem.Decode(data); b != nil; b, rest = pem.Decode(rest) {
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("pki: %s: no certificate", path)
	}
	return certs, nil
}
