package media

// Codec names of an SDP's RTP formats (RFC 3551, RFC 8866 section 6.6).

import (
	"strings"

	"github.com/pion/sdp/v3"
)

// staticCodecs are the static RTP payload types of RFC 3551 (table 4 and
// 5) that carry audio or video.
var staticCodecs = map[string]string{
	"0": "PCMU/8000", "3": "GSM/8000", "4": "G723/8000", "5": "DVI4/8000", "6": "DVI4/16000",
	"7": "LPC/8000", "8": "PCMA/8000", "9": "G722/8000", "10": "L16/44100/2", "11": "L16/44100",
	"12": "QCELP/8000", "13": "CN/8000", "14": "MPA/90000", "15": "G728/8000", "16": "DVI4/11025",
	"17": "DVI4/22050", "18": "G729/8000", "25": "CelB/90000", "26": "JPEG/90000", "28": "nv/90000",
	"31": "H261/90000", "32": "MPV/90000", "33": "MP2T/90000", "34": "H263/90000",
}

// maxCodecName bounds a codec name taken from an rtpmap.
const maxCodecName = 64

// codecNames names formats from the stream's a=rtpmap lines (RFC 8866
// section 6.6), else the static table. A name that is not printable ASCII,
// or too long, is left out: it would be written into records.
func codecNames(formats []string, attrs []sdp.Attribute) []string {
	rtpmap := map[string]string{}
	for _, a := range attrs {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
		enc = strings.TrimSpace(enc)
		if !ok || enc == "" || len(enc) > maxCodecName || !printableASCII(enc) {
			continue
		}
		if _, dup := rtpmap[pt]; !dup {
			rtpmap[pt] = enc
		}
	}
	out := make([]string, len(formats))
	for i, f := range formats {
		if n, ok := rtpmap[f]; ok {
			out[i] = n
		} else {
			out[i] = staticCodecs[f]
		}
	}
	return out
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Codec is the stream's first media format that is a codec, not a helper
// format (telephone-event, comfort noise, redundancy, FEC, retransmission):
// in an answer, what the answerer will send (RFC 3264 section 6.1). "" when
// none is named.
func (s Stream) Codec() string {
	for _, c := range s.Codecs {
		name, _, _ := strings.Cut(c, "/")
		switch strings.ToLower(name) {
		case "", "telephone-event", "cn", "red", "ulpfec", "flexfec", "rtx":
			continue
		}
		return c
	}
	return ""
}
