package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// errKeyWithheld replaces a key parsing error whose text quoted the key.
var errKeyWithheld = errors.New("invalid private key (parser message withheld because it quoted key material)")

// loadKeyPair reads a certificate (chain) and its private key and returns the
// pair with Leaf set. Errors name the files and never contain key material.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := readFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read cert %s: %w", certFile, err)
	}
	keyPEM, err := readFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load cert %s with key %s: %w", certFile, keyFile, scrubKey(err, keyPEM))
	}
	if pair.Leaf == nil { // GODEBUG x509keypairleaf=0
		pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("load cert %s: %w", certFile, err)
		}
	}
	return &pair, nil
}

// loadCAFile reads a PEM bundle of trusted certificates and returns them in
// file order. It fails on a bundle without certificates, on a certificate
// that does not parse, and on a private key in the bundle (a CA bundle is
// public; a key in it is a mistake worth stopping for).
func loadCAFile(path string) ([]*x509.Certificate, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ca file %s: %w", path, err)
	}
	var cas []*x509.Certificate
	for i, rest := 1, data; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("ca file %s: PEM block %d is a private key; a CA bundle holds certificates only", path, i)
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca file %s: PEM block %d: %w", path, i, err)
		}
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("ca file %s: no PEM certificates found", path)
	}
	return cas, nil
}

// readFile reads a file and drops the path from os errors, which the
// callers already name.
func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	return data, nil
}

// scrubKey returns err unless its text contains a piece of the key file:
// a run of 16 characters from any line of the file, or from the hex of any
// PEM block in it. The standard library's messages do not quote keys; this is
// the guarantee that a future one, or an odd input, cannot put a key in a log.
func scrubKey(err error, keyData []byte) error {
	msg := err.Error()
	var pieces []string
	for line := range bytes.Lines(keyData) {
		line = bytes.TrimSpace(line)
		if bytes.HasPrefix(line, []byte("-----")) {
			continue // PEM armour names the block type, nothing secret
		}
		pieces = append(pieces, string(line))
	}
	for rest := keyData; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		pieces = append(pieces, hex.EncodeToString(block.Bytes), string(block.Bytes))
	}
	const window = 16
	for _, p := range pieces {
		for i := 0; i+window <= len(p); i += window / 2 {
			if strings.Contains(msg, p[i:i+window]) {
				return errKeyWithheld
			}
		}
		if len(p) >= 8 && len(p) < window && strings.Contains(msg, p) {
			return errKeyWithheld
		}
	}
	return err
}
