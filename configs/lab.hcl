# parapet lab default: loopback only. A PBX side over UDP/TCP with plain RTP allowed,
# a carrier side over TLS 1.2+ with SRTP required.
#
# `parapet run` with no -c uses this file; `parapet demo` runs it together with a
# simulated PBX (127.0.0.1:5070) and a simulated carrier (127.0.0.1:5062). The lab
# PKI (certs/lab-ca.pem under the state directory) is created before it is loaded.

zone "pbx" {
  listen = ["udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8", "::1/128"]
  # Toward the PBX parapet names its version (other zones get "parapet" alone).
  user_agent = "parapet/${version}"
  # No TLS here, so SDES keys are neither taken nor sent (an SDES offer gets
  # 488); DTLS-SRTP offers are taken, and plain RTP is allowed.
  media { srtp = "allow" }
}

zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8", "::1/128"]
  # No cert_file: parapet serves the self-signed lab certificate (check warns).
  tls {
    min_version = "1.2"
    ca_file     = "${state_dir}/certs/lab-ca.pem"
    verify_peer = true
    client_auth = "request"
  }
  media {
    srtp         = "require"
    key_exchange = ["sdes", "dtls"] # parapet offers SDES; DTLS-SRTP offers are taken too
    suites       = ["AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"]
  }
}

# Emergency calls: never refused for a call limit or a full log, recorded emergency.
# A phone may dial the number or urn:service:sos (RFC 5031, as Request-URI or in To):
# a URN call is routed and sent on as the first number, 911. Route "outbound" below
# takes them (it matches 911 and has no max_calls); a site with call limits gives
# them a route of their own, first (docs/config.md, emergency).
emergency {
  numbers = ["911", "933"]
}

route "outbound" {
  from   = "pbx"
  to     = "carrier"
  match  = "^\\+?[0-9]{3,15}$"
  target = "sips:127.0.0.1:5062" # the lab carrier that `parapet demo` simulates
}

route "inbound" {
  from   = "carrier"
  to     = "pbx"
  target = "sip:127.0.0.1:5070" # the lab PBX that `parapet demo` simulates
}

media {
  address = "127.0.0.1"
  ports   = "20000-29999"
  timeout = "30s"
}

compliance {
  log          = "${state_dir}/compliance.jsonl"
  pseudonymize = true
}

admin {
  listen = "127.0.0.1:9090"
}
