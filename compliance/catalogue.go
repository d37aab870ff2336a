package compliance

import "github.com/parapet-sbc/parapet/policy"

// ControlSpec is one entry of the control catalogue: a HIPAA control, what
// it asks for in the regulation's words, what parapet takes as evidence for
// it, and the technical standards behind that expectation.
type ControlSpec struct {
	Control policy.Control
	// Requirement is the regulation's standard or implementation
	// specification, quoted or closely paraphrased.
	Requirement string
	// Evidence says what parapet's records show for the control and how a
	// report judges it.
	Evidence string
	// References are the standards the technical expectation rests on.
	References []Reference
}

// Reference is a regulation or standard.
type Reference struct {
	ID    string
	Title string
}

// The references the catalogue cites.
var (
	refSecurityRule = Reference{"45 CFR 164.312", "HIPAA Security Rule: technical safeguards"}
	refPrivacyRule  = Reference{"45 CFR 164.514", "HIPAA Privacy Rule: de-identification of protected health information"}
	refRFC8996      = Reference{"RFC 8996", "Deprecating TLS 1.0 and TLS 1.1"}
	refNIST80052    = Reference{"NIST SP 800-52 Rev. 2", "Guidelines for the Selection, Configuration, and Use of TLS Implementations"}
	refRFC5630      = Reference{"RFC 5630", "The Use of the SIPS URI Scheme in the Session Initiation Protocol"}
	refRFC3711      = Reference{"RFC 3711", "The Secure Real-time Transport Protocol (SRTP)"}
	refRFC7714      = Reference{"RFC 7714", "AES-GCM Authenticated Encryption in SRTP"}
	refRFC4568      = Reference{"RFC 4568", "SDP Security Descriptions for Media Streams"}
	refRFC5763      = Reference{"RFC 5763", "Framework for Establishing an SRTP Security Context Using DTLS"}
	refRFC5764      = Reference{"RFC 5764", "DTLS Extension to Establish Keys for SRTP"}
	refRFC5280      = Reference{"RFC 5280", "Internet X.509 Public Key Infrastructure Certificate and CRL Profile"}
	refNIST80092    = Reference{"NIST SP 800-92", "Guide to Computer Security Log Management"}
	refRFC8032      = Reference{"RFC 8032", "Edwards-Curve Digital Signature Algorithm (EdDSA)"}
	refFIPS1804     = Reference{"FIPS 180-4", "Secure Hash Standard (SHA-256)"}
	refRFC2104      = Reference{"RFC 2104", "HMAC: Keyed-Hashing for Message Authentication"}
	refNISTIR8053   = Reference{"NIST IR 8053", "De-Identification of Personal Information"}
)

// Catalogue lists the controls parapet maps its evidence to, in report
// order (policy.Controls). Every finding and decision in a record names
// controls of this catalogue.
var Catalogue = []ControlSpec{
	{
		Control: policy.ControlAccess,
		Requirement: "Implement technical policies and procedures for electronic information systems that " +
			"maintain electronic protected health information to allow access only to those persons or " +
			"software programs that have been granted access rights.",
		Evidence: "Each zone admits requests only from its configured peers. Call records carry a (a)(1) " +
			"finding for the leg that sent the request; requests from outside a zone's peers are refused " +
			"with 403 and recorded as source_refused events. Needs attention when an observe-mode zone let " +
			"a call from outside its peers through.",
		References: []Reference{refSecurityRule},
	},
	{
		Control: policy.ControlAudit,
		Requirement: "Implement hardware, software, and/or procedural mechanisms that record and examine " +
			"activity in information systems that contain or use electronic protected health information.",
		Evidence: "One record per call and per connection event, appended and fsync'd before the call goes " +
			"on, in a hash chain that parapet verify walks. Judged from the log itself: every chain given " +
			"must verify without a gap, and runs that ended uncleanly (calls whose end was not observed) " +
			"or torn lines are shown.",
		References: []Reference{refSecurityRule, refNIST80092},
	},
	{
		Control: policy.ControlIntegrity,
		Requirement: "Implement policies and procedures to protect electronic protected health information " +
			"from improper alteration or destruction.",
		Evidence: "The log's records are chained by SHA-256 and signed at checkpoints with parapet's Ed25519 " +
			"key. Satisfied only when every chain verifies and its checkpoints verify with the public key " +
			"given (-key) and cover all records but the short unsigned tail parapet leaves; without a key " +
			"the hash chain alone cannot rule out a rewrite by someone able to write the log.",
		References: []Reference{refSecurityRule, refFIPS1804, refRFC8032},
	},
	{
		Control: policy.ControlAuthentication,
		Requirement: "Implement procedures to verify that a person or entity seeking access to electronic " +
			"protected health information is the one claimed.",
		Evidence: "For legs over TLS, the peer's certificate and whether it verified against the zone's CAs; " +
			"for other legs, identification by source address only. Needs attention when a zone asked for " +
			"a verified certificate and a leg ran without one (observe mode), or a handshake was refused " +
			"for a missing or untrusted certificate.",
		References: []Reference{refSecurityRule, refRFC5280, refRFC5630},
	},
	{
		Control: policy.ControlTransmission,
		Requirement: "Implement technical security measures to guard against unauthorized access to " +
			"electronic protected health information that is being transmitted over an electronic " +
			"communications network.",
		Evidence: "Per leg: SIP over TLS 1.2 or later and media over SRTP. Legs of zones whose policy " +
			"requires protection (external legs) must have both; TLS below 1.2 is refused at the handshake " +
			"(RFC 8996, NIST SP 800-52r2). Needs attention when an external leg ran without either (observe " +
			"mode) or when a capture shows SIP or media in clear.",
		References: []Reference{refSecurityRule, refRFC8996, refNIST80052, refRFC3711},
	},
	{
		Control: policy.ControlTransitIntegrity,
		Requirement: "Implement security measures to ensure that electronically transmitted electronic " +
			"protected health information is not improperly modified without detection until disposed of.",
		Evidence: "SRTP authenticates every media packet (HMAC-SHA1-80 or AEAD-GCM; never the 32-bit tag " +
			"or NULL suites) and parapet drops and counts packets that fail authentication or replay. " +
			"Needs attention when a leg that required SRTP carried plain RTP.",
		References: []Reference{refSecurityRule, refRFC3711, refRFC7714},
	},
	{
		Control: policy.ControlEncryption,
		Requirement: "Implement a mechanism to encrypt electronic protected health information whenever " +
			"deemed appropriate.",
		Evidence: "SIP over TLS 1.2+ with the zone's cipher suites; SRTP keyed by SDES only over TLS " +
			"(RFC 4568 §8.3) or by DTLS-SRTP (RFC 5763/5764). Needs attention as (e)(1).",
		References: []Reference{refSecurityRule, refNIST80052, refRFC3711, refRFC7714, refRFC4568, refRFC5763, refRFC5764},
	},
	{
		Control: policy.ControlDeidentification,
		Requirement: "Health information that does not identify an individual, and with respect to which " +
			"there is no reasonable basis to believe that it can be used to identify one, is not " +
			"individually identifiable (164.514(a)); a re-identification code must not be derived from " +
			"information about the individual unless it cannot be translated back (164.514(c)).",
		Evidence: "Caller and callee numbers and SIP Call-IDs are written as keyed HMAC-SHA256 tokens; the " +
			"key stays on the host, so a copy of the log does not name the parties. Needs attention when " +
			"records hold numbers in clear (pseudonymisation turned off).",
		References: []Reference{refPrivacyRule, refRFC2104, refNISTIR8053},
	},
}

// Spec returns the catalogue entry of c.
func Spec(c policy.Control) (ControlSpec, bool) {
	for _, s := range Catalogue {
		if s.Control == c {
			return s, true
		}
	}
	return ControlSpec{}, false
}
