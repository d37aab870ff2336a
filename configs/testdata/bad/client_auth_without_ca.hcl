zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file   = "certs/sbc.pem"
    key_file    = "certs/sbc.key"
    client_auth = "require"
  }
}

media {
  address = "127.0.0.1"
}
