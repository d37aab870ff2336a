zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "missing.pem"
    key_file  = "/etc/parapet/keys/present.key"
    ca_file   = "${state_dir}/missing-ca.pem"
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
