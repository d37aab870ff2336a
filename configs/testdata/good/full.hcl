# Every field set, including the NEW ones (state_dir, advertise, ciphers,
# server_name, media advertise).
state_dir = "/var/lib/parapet"

zone "pbx" {
  listen    = ["udp://10.0.0.5:5060", "tcp://10.0.0.5:5060", "tls://10.0.0.5:5061"]
  peers     = ["10.20.0.0/16", "10.30.0.7"]
  advertise = "sbc.clinic.example"
  mode      = "observe"
  tls {
    min_version = "1.2"
    cert_file   = "certs/sbc.pem"
    key_file    = "certs/sbc.key"
    ca_file     = "/etc/ssl/clinic-ca.pem"
    verify_peer = true
    client_auth = "request"
    ciphers     = ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
  }
  media {
    srtp         = "allow"
    key_exchange = ["sdes"]
    suites       = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
    rtcp_feedback = "off"
  }
}

zone "carrier" {
  listen = ["tls://203.0.113.10:5061"]
  peers  = ["198.51.100.0/24", "2001:db8:100::/48"]
  tls {
    min_version = "1.3"
    cert_file   = "${config_dir}/certs/public.pem"
    key_file    = "${config_dir}/certs/public.key"
    ca_file     = "${state_dir}/carrier-ca.pem"
    client_auth = "require"
    server_name = "trunk.carrier.example"
  }
  media {
    srtp         = "require"
    key_exchange = ["sdes", "dtls"]
    suites       = ["AEAD_AES_256_GCM"]
  }
}

route "emergency" {
  from   = "pbx"
  to     = "carrier"
  match  = "^(911|933)$"
  target = "sips:[2001:db8:100::10]:5061"
}

route "outbound" {
  from   = "pbx"
  to     = "carrier"
  match  = "^\\+?[0-9]{7,15}$"
  target = "sip:trunk.carrier.example;transport=tls"
  max_calls = 23
  auth {
    username     = "clinic"
    password_env = "CARRIER_PASSWORD"
  }
}

route "inbound" {
  from   = "carrier"
  to     = "pbx"
  target = "sip:10.0.0.20:5060;transport=tcp"
}

media {
  address   = "0.0.0.0"
  advertise = "203.0.113.10"
  ports     = "30001-30100"
  timeout   = "1m30s"
}

compliance {
  log          = "logs/compliance.jsonl"
  pseudonymize = false
}

admin {
  listen = "[::1]:9090"
}
