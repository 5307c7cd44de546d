package pki

import (
	"errors"
	"flag"
	"path/filepath"
)

// Files names the trust material of one program: the CA certificates it
// trusts, its own certificate and key, and the revocation list. All empty:
// the program's internal connections are plaintext (a deployment's choice,
// refused by nothing; tradeunit dev and the tests always set them).
type Files struct {
	CA   string // PEM: every CA certificate trusted (more than one while a CA rotates)
	Cert string // PEM: this program's certificate
	Key  string // PEM: its key (mode 0600)
	CRL  string // PEM: the CA's revocation list; "" for none
}

// Flags binds the files to the flags --tls-ca, --tls-cert, --tls-key and
// --tls-crl of fs.
func (f *Files) Flags(fs *flag.FlagSet) {
	fs.StringVar(&f.CA, "tls-ca", f.CA, "CA certificates (PEM) that internal peers' certificates must chain to; with --tls-cert and --tls-key, every internal connection is mutual TLS")
	fs.StringVar(&f.Cert, "tls-cert", f.Cert, "this program's certificate (PEM), reloaded when it changes")
	fs.StringVar(&f.Key, "tls-key", f.Key, "this program's key (PEM, mode 600), reloaded when it changes")
	fs.StringVar(&f.CRL, "tls-crl", f.CRL, "the CA's revocation list (PEM), reloaded when it changes; revoked peers are refused")
}

// Args are the flags (Flags) that name these files: how a program is
// started, or a tool run, with them.
func (f Files) Args() []string {
	return []string{"--tls-ca", f.CA, "--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-crl", f.CRL}
}

// Enabled reports whether any file is named.
func (f Files) Enabled() bool { return f != Files{} }

// Validate reports files named by halves; it changes nothing.
func (f Files) Validate() error {
	if !f.Enabled() {
		return nil
	}
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return errors.New("tls: --tls-ca, --tls-cert and --tls-key go together")
	}
	return nil
}

// FilesIn returns the files of the certificate named name in dir, issued
// by the CA in caDir (IssueFiles' layout).
func FilesIn(caDir, dir, name string) Files {
	return Files{CA: filepath.Join(caDir, CACertFile), CRL: filepath.Join(caDir, CRLFile),
		Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
}
