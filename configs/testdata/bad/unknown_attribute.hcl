zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    min_verson = "1.3"
    cert_file  = "c.pem"
    key_file   = "c.key"
  }
}

zone "pbx" {
  listen    = ["udp://127.0.0.1:5060"]
  peers     = ["127.0.0.0/8"]
  advertize = "pbx.example"
  media { srtp = "allow" }
}

route "r" {
  from   = "carrier"
  to     = "carrier"
  target = "sips:127.0.0.1:5062"
}

media {
  address = "127.0.0.1"
}
