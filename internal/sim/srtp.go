package sim

// SDES keys (a=crypto, RFC 4568) and the pion/srtp contexts made from them.

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

type sdesLine struct {
	tag    int
	suite  string
	key    []byte
	params string
}

func keyLen(suite string) (int, error) {
	switch suite {
	case "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "NULL_HMAC_SHA1_80", "NULL_HMAC_SHA1_32":
		return 30, nil
	case "AEAD_AES_128_GCM":
		return 28, nil
	case "AEAD_AES_256_GCM":
		return 44, nil
	}
	return 0, fmt.Errorf("sim: unknown suite %s", suite)
}

func newKey(suite string) ([]byte, error) {
	n, err := keyLen(suite)
	if err != nil {
		return nil, err
	}
	k := make([]byte, n)
	_, err = rand.Read(k)
	return k, err
}

func parseCrypto(v string) (sdesLine, error) {
	f := strings.Fields(v)
	if len(f) < 3 || !strings.HasPrefix(f[2], "inline:") {
		return sdesLine{}, fmt.Errorf("sim: bad crypto line")
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil {
		return sdesLine{}, err
	}
	b64, _, _ := strings.Cut(strings.TrimPrefix(f[2], "inline:"), "|")
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return sdesLine{}, err
		}
	}
	return sdesLine{tag: tag, suite: f[1], key: key}, nil
}

func srtpProfile(suite string) (srtp.ProtectionProfile, error) {
	switch suite {
	case "AES_CM_128_HMAC_SHA1_80":
		return srtp.ProtectionProfileAes128CmHmacSha1_80, nil
	case "AES_CM_128_HMAC_SHA1_32":
		return srtp.ProtectionProfileAes128CmHmacSha1_32, nil
	case "AEAD_AES_128_GCM":
		return srtp.ProtectionProfileAeadAes128Gcm, nil
	case "AEAD_AES_256_GCM":
		return srtp.ProtectionProfileAeadAes256Gcm, nil
	case "NULL_HMAC_SHA1_80":
		return srtp.ProtectionProfileNullHmacSha1_80, nil
	}
	return 0, errors.New("sim: unsupported suite " + suite)
}

func contextFor(l *sdesLine, replay bool) (*srtp.Context, error) {
	profile, err := srtpProfile(l.suite)
	if err != nil {
		return nil, err
	}
	kl, _ := profile.KeyLen()
	var opts []srtp.ContextOption
	if replay {
		opts = append(opts, srtp.SRTPReplayProtection(64))
	}
	return srtp.CreateContext(l.key[:kl], l.key[kl:], profile, opts...)
}
