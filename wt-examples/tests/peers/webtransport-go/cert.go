package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"time"
)

// selfSigned makes an ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1, valid for a day
// (the browser rules for certificate hashes, which wt's client follows, allow at most 14 days),
// and returns it with the hex SHA-256 of its DER encoding.
func selfSigned() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	now := time.Now()
	template := x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(23 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, &template, &template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	hash := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(hash[:]), nil
}

// pinnedHash accepts exactly the server certificate whose SHA-256 is hexHash.
func pinnedHash(hexHash string) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the hash check below
		VerifyConnection: func(state tls.ConnectionState) error {
			if len(state.PeerCertificates) == 0 {
				return errNoCertificate
			}
			hash := sha256.Sum256(state.PeerCertificates[0].Raw)
			if got := hex.EncodeToString(hash[:]); got != hexHash {
				return &hashMismatch{got: got}
			}
			return nil
		},
	}
}
