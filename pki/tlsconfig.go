package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
)

// ServerTLS returns the TLS configuration of a server that requires every
// client to present a certificate of the current CAs, not revoked, naming
// a role. What each role may call is the server's to decide (PeerIdentity).
// Each handshake uses the material current at that time.
func (k *Keys) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := k.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{m.cert},
				ClientAuth:   tls.RequireAnyClientCert,
				NextProtos:   []string{"h2", "http/1.1"},
				// The chain is verified here rather than by ClientCAs, so
				// that the revocation list is checked in the same step.
				VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
					chain, err := parseChain(raw)
					if err != nil {
						return err
					}
					_, err = m.verify(chain, x509.ExtKeyUsageClientAuth, "")
					return err
				},
			}, nil
		},
	}
}

// ClientTLS returns the TLS configuration of a client: it presents this
// program's current certificate and accepts a server whose certificate
// chains to the current CAs, is not revoked and names the host dialed.
func (k *Keys) ClientTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			m := k.current()
			return &m.cert, nil
		},
		// The standard verification would use roots fixed at creation;
		// VerifyConnection does the same checks with the current ones.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			host := cs.ServerName
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			_, err := k.current().verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, host)
			return err
		},
	}
}

// PeerIdentity returns who a verified connection's peer is.
func PeerIdentity(cs tls.ConnectionState) (Identity, error) {
	if len(cs.PeerCertificates) == 0 {
		return Identity{}, ErrNoIdentity
	}
	return IdentityOf(cs.PeerCertificates[0])
}

func parseChain(raw [][]byte) ([]*x509.Certificate, error) {
	chain := make([]*x509.Certificate, 0, len(raw))
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	return chain, nil
}
