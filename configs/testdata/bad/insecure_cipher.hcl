zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "c.pem"
    key_file  = "c.key"
    ciphers = [
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      "TLS_RSA_WITH_RC4_128_SHA",
      "TLS_AES_128_GCM_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA265",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ]
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
