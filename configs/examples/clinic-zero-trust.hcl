# Clinic, zero trust: every leg is TLS + SRTP, internal ones included.
#
#   staff       remote staff softphones on the internet, each with a client
#               certificate from the clinic CA (mutual TLS)
#   telehealth  partner platforms, TLS 1.3 only
#   pbx         the clinic's own PBX, which also speaks TLS and SRTP
#
# parapet sits behind a 1:1 NAT: it binds 10.0.0.10 and is reached as
# sbc.clinic.example / 203.0.113.20, which is what it advertises.

state_dir = "/var/lib/parapet"

zone "staff" {
  listen    = ["tls://10.0.0.10:5061"]
  peers     = ["0.0.0.0/0", "::/0"]   # anyone may connect: the client certificate decides
  max_calls = 200                     # remote staff calls at once; beyond, 503 + Retry-After
  advertise = "sbc.clinic.example"
  tls {
    min_version = "1.2"
    cert_file   = "/etc/parapet/certs/sbc.pem"
    key_file    = "/etc/parapet/certs/sbc.key"
    ca_file     = "/etc/parapet/certs/clinic-ca.pem"
    client_auth = "require"
  }
  media {
    srtp         = "require"
    key_exchange = ["dtls", "sdes"]   # softphones that do DTLS-SRTP get it; SDES still accepted
    suites       = ["AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"]
  }
  # The softphones register through parapet with the PBX (which must take
  # Path, RFC 3327: Asterisk's support_path = yes); the PBX's calls to them
  # come back over the TLS connection each softphone opened.
  # callers = "registered" (the default): a softphone calls only over the
  # connection it registered on, From the address of record it registered.
  registrar {
    zone   = "pbx"
    target = "sips:pbx.clinic.internal:5061"
  }
}

zone "telehealth" {
  listen    = ["tls://10.0.0.10:5063"]
  peers     = ["198.51.100.0/24", "2001:db8:77::/48"]
  advertise = "sbc.clinic.example"
  tls {
    min_version = "1.3"
    cert_file   = "/etc/parapet/certs/sbc.pem"
    key_file    = "/etc/parapet/certs/sbc.key"
    ca_file     = "/etc/parapet/certs/partners-ca.pem"
    client_auth = "require"
    server_name = "sip.telehealth.example"
  }
  media {
    srtp         = "require"
    key_exchange = ["sdes"]
    suites       = ["AEAD_AES_256_GCM", "AEAD_AES_128_GCM"]
  }
}

zone "pbx" {
  listen = ["tls://10.0.0.10:5065"]
  peers  = ["10.0.0.0/24"]
  tls {
    min_version = "1.2"
    cert_file   = "/etc/parapet/certs/sbc-internal.pem"
    key_file    = "/etc/parapet/certs/sbc-internal.key"
    ca_file     = "/etc/parapet/certs/clinic-ca.pem"
    client_auth = "require"
    ciphers     = [
      "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ]
  }
  media {
    srtp = "require"
  }
  trusted = true                      # the clinic's PBX asserts its callers' identity (RFC 3325)
}

# Staff softphones dial 911 too: the PBX places it on its carrier trunk. The
# call is never refused for a call limit or a full log, and keeps the caller's
# number as its callback number.
# A phone may also dial urn:service:sos (RFC 5031, as Request-URI or in To):
# such a call is routed and sent on as the first number, 911.
emergency {
  numbers = ["911", "933"]
}

route "staff-emergency" {
  from   = "staff"
  to     = "pbx"
  match  = "^\\+?(911|933)$"
  target = "sips:pbx.clinic.internal:5061"
}

route "telehealth" {
  from   = "pbx"
  to     = "telehealth"
  match  = "^tele-[a-z0-9-]+$"
  target = "sips:sip.telehealth.example"
}

route "to-pbx" {
  from   = "staff"
  to     = "pbx"
  target = "sips:pbx.clinic.internal:5061"
  # No auth: the PBX's digest challenges reach the phones, which answer them
  # with their own accounts (auth_passthrough, on by default).
}

route "partners-in" {
  from   = "telehealth"
  to     = "pbx"
  target = "sips:pbx.clinic.internal:5061"
}

media {
  address   = "10.0.0.10"
  advertise = "203.0.113.20"
  ports     = "40000-49999"
  timeout   = "20s"
}

compliance {
  pseudonymize = true
}

admin {
  listen = "10.0.0.10:9090"
}
