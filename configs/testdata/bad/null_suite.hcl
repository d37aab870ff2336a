zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "c.pem"
    key_file  = "c.key"
  }
  media {
    suites = ["AEAD_AES_128_GCM", "NULL_HMAC_SHA1_80", "F8_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"]
  }
}

route "r" {
  from   = "carrier"
  to     = "carrier"
  target = "sips:127.0.0.1:5062"
}

media {
  address = "127.0.0.1"
}
