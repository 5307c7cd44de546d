package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"tradeunit/pki"
)

var pkiCmd = &command{
	name:  "pki",
	short: "the cluster's certificate authority: create it, issue and revoke certificates",
	long: "Every internal connection is mutual TLS with certificates of this CA. A certificate names a role\n" +
		"(what its holder may call) and a name (which one); the programs take it with --tls-ca, --tls-cert,\n" +
		"--tls-key and --tls-crl, and reload the files within a second of a change: rotate by issuing again\n" +
		"over the same files, revoke by serial. tradeunit dev makes its own CA under DIR/pki.",
	sub: []*command{pkiInitCmd, pkiIssueCmd, pkiRevokeCmd, pkiShowCmd},
}

var pkiInitCmd = &command{
	name:  "init",
	usage: "--ca DIR [--name NAME]",
	short: "create a CA in DIR (its key 0600; refuses a directory that holds one)",
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
		dir := fs.String("ca", "", "CA directory (required)")
		name := fs.String("name", "tradeunit CA", "the CA's name")
		if err := noArgs(e, fs, args); err != nil {
			return err
		}
		if *dir == "" {
			return usageErrorf("--ca DIR is required")
		}
		if _, err := pki.InitCA(*dir, *name); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "CA %q in %s (certificate %s, revocation list %s)\n", *name, *dir, pki.CACertFile, pki.CRLFile)
		return nil
	},
}

var pkiIssueCmd = &command{
	name:  "issue",
	usage: "--ca DIR --role ROLE --name NAME [--out DIR] [--hosts H,H] [--valid DURATION]",
	short: "issue a certificate and key (0600) as OUT/NAME.crt and OUT/NAME.key, replacing them atomically",
	long:  "Roles: " + roleList() + ". Issuing again over the same files rotates the certificate.",
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
		dir := fs.String("ca", "", "CA directory (required)")
		role := fs.String("role", "", "the holder's role: "+roleList()+" (required)")
		name := fs.String("name", "", "the holder's name, e.g. unit-3 or alice (required)")
		out := fs.String("out", ".", "directory to write NAME.crt and NAME.key to")
		hosts := fs.String("hosts", "", "DNS names and IPs the holder serves on, comma-separated; default localhost,127.0.0.1,::1")
		valid := fs.Duration("valid", pki.DefaultValidity, "validity")
		asJSON := fs.Bool("json", false, "print the files and identity as JSON")
		if err := noArgs(e, fs, args); err != nil {
			return err
		}
		if *dir == "" || *role == "" || *name == "" {
			return usageErrorf("--ca, --role and --name are required")
		}
		if *valid <= 0 {
			return usageErrorf("--valid must be positive")
		}
		ca, err := pki.OpenCA(*dir)
		if err != nil {
			return err
		}
		r := pki.Request{Role: pki.Role(*role), Name: *name, Validity: *valid}
		if *hosts != "" {
			r.Hosts = strings.Split(*hosts, ",")
		}
		iss, err := ca.Issue(r)
		if err != nil {
			return err
		}
		files, err := iss.Write(ca, *out, *name)
		if err != nil {
			return err
		}
		id, _ := pki.IdentityOf(iss.Cert)
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(map[string]any{"files": files, "role": id.Role, "name": id.Name,
				"subject": id.Subject, "serial": id.Serial, "not_after": iss.Cert.NotAfter.UTC()})
		}
		fmt.Fprintf(e.stdout, "issued %s (subject %s, serial %s, valid until %s)\n  %s\n",
			id, id.Subject, id.Serial, iss.Cert.NotAfter.UTC().Format(time.RFC3339), strings.Join(files.Args(), " "))
		return nil
	},
}

var pkiRevokeCmd = &command{
	name:  "revoke",
	usage: "--ca DIR (--serial HEX | --cert FILE)",
	short: "revoke a certificate: programs reading the CA's revocation list refuse it within a second",
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
		dir := fs.String("ca", "", "CA directory (required)")
		serial := fs.String("serial", "", "serial of the certificate, hexadecimal")
		certFile := fs.String("cert", "", "the certificate file to revoke")
		if err := noArgs(e, fs, args); err != nil {
			return err
		}
		if *dir == "" || (*serial == "") == (*certFile == "") {
			return usageErrorf("--ca and one of --serial or --cert are required")
		}
		ca, err := pki.OpenCA(*dir)
		if err != nil {
			return err
		}
		if *certFile != "" {
			id, err := pki.ReadIdentity(*certFile)
			if err != nil {
				return err
			}
			*serial = id.Serial
		}
		if err := ca.Revoke(*serial); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked serial %s\n", *serial)
		return nil
	},
}

var pkiShowCmd = &command{
	name:  "show",
	usage: "--cert FILE",
	short: "print who a certificate names: role, name, subject and serial",
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
		certFile := fs.String("cert", "", "certificate file (required)")
		if err := noArgs(e, fs, args); err != nil {
			return err
		}
		if *certFile == "" {
			return usageErrorf("--cert FILE is required")
		}
		id, err := pki.ReadIdentity(*certFile)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "role %s\nname %s\nsubject %s\nserial %s\n", id.Role, id.Name, id.Subject, id.Serial)
		return nil
	},
}

func roleList() string {
	var s []string
	for _, r := range pki.Roles {
		s = append(s, string(r))
	}
	return strings.Join(s, ", ")
}
