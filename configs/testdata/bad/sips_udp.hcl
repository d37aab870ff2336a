zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "c.pem"
    key_file  = "c.key"
  }
}

route "out" {
  from   = "carrier"
  to     = "carrier"
  target = "sips:127.0.0.1:5062;transport=udp"
}

media {
  address = "127.0.0.1"
}
