# Trunk edge: a PBX on the clinic LAN (UDP/TCP, legacy phones, plain RTP allowed)
# behind parapet, and a carrier SIP trunk over TLS 1.2+ with certificate
# verification, mutual TLS, SRTP required and digest authentication.
#
# parapet runs on one host, 192.0.2.10, reachable by the PBX and the carrier.
# Relative paths are relative to this file's directory.
#
#   parapet check -c trunk-edge.hcl
#   CARRIER_PASSWORD=... parapet run -c trunk-edge.hcl

zone "pbx" {
  listen = ["udp://192.0.2.10:5060", "tcp://192.0.2.10:5060"]
  peers  = ["10.20.0.0/16"]            # who may send requests into this zone
  user_agent = "parapet/${version}"    # the PBX's administrators see the version; other zones get "parapet"
  trusted = true                       # RFC 3325 trust domain: its P-Asserted-Identity is believed
  media {                              # no TLS: SDES offers get 488; DTLS-SRTP and plain RTP are taken
    srtp          = "allow"            # off | allow | require
    rtcp_feedback = "off"              # offer RTP/AVP: Asterisk declines AVPF unless avpf=yes
  }
}

zone "carrier" {
  listen = ["tls://192.0.2.10:5061"]
  peers  = ["198.51.100.0/24"]         # the carrier's SBCs
  outsiders = "drop"                   # anyone else gets no answer at all (refuse: one stateless 403)
  max_calls = 30                       # calls arriving from the carrier at once; beyond, 503 + Retry-After
  trusted = true                       # the trunk contract covers caller identity: PAI passes both ways
  tls {
    min_version = "1.2"                # 1.2 or 1.3; lower is a config error
    cert_file   = "certs/parapet.pem"  # absent: lab self-signed, and `check` warns
    key_file    = "certs/parapet.key"
    ca_file     = "certs/carrier-ca.pem"
    verify_peer = true
    client_auth = "require"            # none | request | require
  }
  media {
    srtp         = "require"
    key_exchange = ["sdes", "dtls"]    # parapet offers the first; it accepts either
    suites       = ["AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"]
  }
  mode = "enforce"                     # enforce | observe
}

limits {                               # the site's budgets (these are the defaults)
  max_calls     = 1000                 # calls up at once, all zones
  outsider_rate = 200                  # 403s per second to sources outside the peers, all zones
  source_rate   = 5                    # ... per address
  prefix_rate   = 50                   # ... per /24 or /64
}

emergency {                            # never refused for a call limit or a full log; recorded emergency
  numbers = ["911", "933"]             # 933: the carrier's 911 address test line
}                                      # urn:service:sos (RFC 5031) is routed as the first, 911

route "emergency" {                    # before "outbound", with no max_calls of its own
  from   = "pbx"
  to     = "carrier"
  match  = "^\\+?(911|933)$"
  target = "sips:trunk.carrier.example:5061"
  auth {
    username     = "clinic"
    password_env = "CARRIER_PASSWORD"
  }
}

route "outbound" {                     # first route whose from/match fits wins
  from   = "pbx"
  to     = "carrier"
  match  = "^\\+?[0-9]{7,15}$"        # on the Request-URI user part
  target = "sips:trunk.carrier.example:5061"   # sets host, port, transport; the user part is kept
                                       # several SBCs: targets = ["sips:sbc1...", "sips:sbc2..."] (failover)
  max_calls = 30                       # the trunk's channels: the 31st call gets 503
  auth {
    username     = "clinic"
    password_env = "CARRIER_PASSWORD"  # the password itself never goes in the file
  }
  # register { expires = "1h" }        # if the carrier authenticates the trunk by registration
}

route "inbound" {
  from   = "carrier"
  to     = "pbx"
  target = "sip:10.20.0.5:5060"        # the PBX
}

media {
  address = "192.0.2.10"               # where the relay binds
  ports   = "20000-29999"
  timeout = "30s"                      # no packets this long: the call is ended
}

compliance {
  log          = "${state_dir}/compliance.jsonl"
  pseudonymize = true
}

admin {
  listen = "127.0.0.1:9090"            # /metrics, /healthz, /readyz
}
