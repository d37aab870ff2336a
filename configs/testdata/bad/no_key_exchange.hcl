# srtp defaults to "require"; a zone without TLS has no SDES by default.
zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
}

zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "c.pem"
    key_file  = "c.key"
  }
  media {
    key_exchange = []
  }
}

route "r" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:127.0.0.1:5062"
}

media {
  address = "127.0.0.1"
}
